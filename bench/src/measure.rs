//! One load phase with the CPU time of every process on the box sampled over its measured window:
//! shared by `gateway` (moatd against the direct path) and `compare` (several gateways).

use std::time::Duration;

use crate::load::{self, LoadSpec};
use crate::procstat;
use crate::report::{CpuUse, PhaseStats};

/// The processes whose CPU time is sampled around each phase. `gateway` is counted with its whole
/// process tree (nginx's and LiteLLM's workers); when it equals `emulator` the phase is the direct
/// path and no gateway time is counted.
#[derive(Debug, Clone, Copy)]
pub struct Pids {
    pub gateway: u32,
    pub emulator: u32,
    pub bench: u32,
}

/// Pause between phases, so the machine settles (sockets in TIME_WAIT, the previous phase's stragglers).
const PAUSE: Duration = Duration::from_millis(300);

/// Runs `spec` and returns its figures with the CPU each process used in the measured window.
pub async fn phase(spec: &LoadSpec, pids: Pids) -> anyhow::Result<PhaseStats> {
    tokio::time::sleep(PAUSE).await;
    let sample = async {
        // load::run starts its clock 20 ms after opening its connections.
        tokio::time::sleep(spec.warmup + Duration::from_millis(20)).await;
        let before = Sample::read(pids)?;
        tokio::time::sleep(spec.duration).await;
        Ok::<_, anyhow::Error>(Sample::read(pids)?.since(&before))
    };
    let (result, cpu) = tokio::join!(load::run(spec), sample);
    Ok(PhaseStats::new(&result?, cpu?))
}

/// CPU counters at one moment: ours per process, and the whole machine's.
pub struct Sample {
    pids: Pids,
    gateway: f64,
    emulator: f64,
    bench: f64,
    machine: procstat::MachineTimes,
}

impl Sample {
    pub fn read(pids: Pids) -> anyhow::Result<Sample> {
        let emulator = procstat::cpu_seconds(pids.emulator)?;
        let gateway = if pids.gateway == pids.emulator {
            emulator
        } else {
            procstat::tree_cpu_seconds(pids.gateway)?
        };
        Ok(Sample {
            pids,
            gateway,
            emulator,
            bench: procstat::cpu_seconds(pids.bench)?,
            machine: procstat::machine_times()?,
        })
    }

    /// What each process used since `before`; `other` is process time on the machine not spent by
    /// ours, `steal` what the hypervisor took.
    pub fn since(&self, before: &Sample) -> CpuUse {
        let emulator = self.emulator - before.emulator;
        let gateway = if self.pids.gateway == self.pids.emulator {
            0.0
        } else {
            self.gateway - before.gateway
        };
        let bench = self.bench - before.bench;
        let all = self.machine.processes - before.machine.processes;
        CpuUse {
            gateway,
            emulator,
            bench,
            // Tick rounding can make this slightly negative on a quiet machine.
            other: (all - gateway - emulator - bench).max(0.0),
            steal: self.machine.steal - before.machine.steal,
        }
    }
}

/// Runs `work` until it ends or the harness is interrupted (Ctrl-C, SIGTERM). Interrupted, the work's
/// future is dropped, so the server guards it holds kill their child processes instead of leaving
/// gateways and emulators running.
pub async fn until_interrupted<T>(
    work: impl std::future::Future<Output = anyhow::Result<T>>,
) -> anyhow::Result<T> {
    use tokio::signal::unix::{signal, SignalKind};
    let mut term = signal(SignalKind::terminate())?;
    tokio::select! {
        result = work => result,
        _ = tokio::signal::ctrl_c() => anyhow::bail!("interrupted; the servers it started were stopped"),
        _ = term.recv() => anyhow::bail!("terminated; the servers it started were stopped"),
    }
}
