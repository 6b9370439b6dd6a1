//! The `moat` binary: everything lives in the library; this only hands over the process's exit code.

fn main() -> std::process::ExitCode {
    moat::main()
}
