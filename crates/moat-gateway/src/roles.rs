//! Who may do what in the admin API and the console. Three roles: `admin` (everything), `team_admin`
//! (their own team's keys, limits and usage, nothing else), `viewer` (read-only). The same rules hold
//! whether the operator came with an admin key or a console session.

use serde::Serialize;

/// An operator's role.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "role", rename_all = "snake_case")]
pub enum Role {
    Admin,
    /// Manages one team (by name).
    TeamAdmin {
        team: String,
    },
    Viewer,
}

impl Role {
    /// Parses `admin`, `viewer` or `team_admin:TEAM` (a role claim's mapping in the config), or
    /// `team_admin` with the team given apart (an admin key's `team`).
    pub fn parse(text: &str, team: Option<&str>) -> Result<Role, String> {
        let (name, inline) = match text.split_once(':') {
            Some((n, t)) => (n, Some(t)),
            None => (text, None),
        };
        match (name.trim(), inline.or(team).map(str::trim)) {
            ("admin", None) => Ok(Role::Admin),
            ("viewer", None) => Ok(Role::Viewer),
            ("team_admin", Some(t)) if !t.is_empty() => Ok(Role::TeamAdmin { team: t.to_string() }),
            ("team_admin", _) => Err("team_admin needs a team (team_admin:TEAM)".into()),
            ("admin" | "viewer", Some(_)) => Err(format!("{name} takes no team")),
            (other, _) => Err(format!("unknown role {other:?}: use admin, team_admin or viewer")),
        }
    }

    /// Strongest first, for a person whose claims map to several roles.
    fn rank(&self) -> u8 {
        match self {
            Role::Admin => 0,
            Role::TeamAdmin { .. } => 1,
            Role::Viewer => 2,
        }
    }

    /// The strongest of several roles.
    pub fn strongest(roles: impl IntoIterator<Item = Role>) -> Option<Role> {
        roles.into_iter().min_by_key(Role::rank)
    }

    pub fn name(&self) -> &'static str {
        match self {
            Role::Admin => "admin",
            Role::TeamAdmin { .. } => "team_admin",
            Role::Viewer => "viewer",
        }
    }
}

/// Someone using the admin API: who (as audit records name them) and with what role.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Operator {
    /// `admin-key:ab12cd34`, `key:NAME`, `sso:alice@example.com`.
    pub actor: String,
    pub role: Role,
}

/// What an operator may be refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refused(pub String);

impl Operator {
    /// Anything that changes state: every role but viewer (team admins are then held to their team).
    pub fn may_write(&self) -> Result<(), Refused> {
        match self.role {
            Role::Viewer => Err(Refused(format!("{} is read-only (viewer)", self.actor))),
            _ => Ok(()),
        }
    }

    /// Things only full admins do: teams, provider keys, audit maintenance.
    pub fn must_be_admin(&self) -> Result<(), Refused> {
        match self.role {
            Role::Admin => Ok(()),
            _ => Err(Refused(format!(
                "{} ({}) may not do this: admin only",
                self.actor,
                self.role.name()
            ))),
        }
    }

    /// The one team a team admin is held to; `None` for admins and viewers (who see every team).
    pub fn team_scope(&self) -> Option<&str> {
        match &self.role {
            Role::TeamAdmin { team } => Some(team),
            _ => None,
        }
    }

    /// Whether a thing belonging to `team` (by name) is within reach.
    pub fn may_touch_team(&self, team: Option<&str>) -> Result<(), Refused> {
        match self.team_scope() {
            None => Ok(()),
            Some(own) if team == Some(own) => Ok(()),
            Some(own) => Err(Refused(format!("{} manages team {own:?} only", self.actor))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn op(role: Role) -> Operator {
        Operator {
            actor: "sso:someone".into(),
            role,
        }
    }

    #[test]
    fn roles_parse_with_their_team() {
        assert_eq!(Role::parse("admin", None), Ok(Role::Admin));
        assert_eq!(Role::parse("viewer", None), Ok(Role::Viewer));
        let research = Role::TeamAdmin {
            team: "research".into(),
        };
        assert_eq!(Role::parse("team_admin:research", None), Ok(research.clone()));
        assert_eq!(Role::parse("team_admin", Some("research")), Ok(research));
        assert!(Role::parse("team_admin", None).is_err());
        assert!(Role::parse("viewer:research", None).is_err());
        assert!(Role::parse("root", None).is_err());
    }

    #[test]
    fn the_strongest_role_wins() {
        let team = Role::TeamAdmin { team: "t".into() };
        assert_eq!(Role::strongest([Role::Viewer, team.clone()]), Some(team));
        assert_eq!(Role::strongest([Role::Viewer, Role::Admin]), Some(Role::Admin));
        assert_eq!(Role::strongest([]), None);
    }

    #[test]
    fn each_role_is_held_to_what_it_may_touch() {
        let admin = op(Role::Admin);
        let viewer = op(Role::Viewer);
        let lead = op(Role::TeamAdmin {
            team: "research".into(),
        });
        assert!(admin.may_write().is_ok() && admin.must_be_admin().is_ok());
        assert!(admin.may_touch_team(Some("ops")).is_ok() && admin.may_touch_team(None).is_ok());
        assert!(viewer.may_write().is_err() && viewer.must_be_admin().is_err());
        assert!(lead.may_write().is_ok() && lead.must_be_admin().is_err());
        assert!(lead.may_touch_team(Some("research")).is_ok());
        assert!(lead.may_touch_team(Some("ops")).is_err());
        assert!(
            lead.may_touch_team(None).is_err(),
            "keys outside any team are not a team's"
        );
    }
}
