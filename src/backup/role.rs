//! A host's role in its mirror (primary, backup, async member…), read from
//! its instances at run time, and the freeze order it implies.

use serde::{Deserialize, Serialize};

/// A host's place in its mirror, as read from the instances.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "role", rename_all = "kebab-case")]
pub enum Role {
    Primary,
    /// The failover member that is not primary.
    Backup,
    /// A DR or reporting async member.
    Async {
        member_type: String,
    },
    NotMember,
    /// A failover member in transition, in trouble or down, or an unreadable role.
    Unsettled {
        detail: String,
    },
}

impl Role {
    pub fn from_fields(member_type: &str, status: &str) -> Role {
        match member_type.trim() {
            "" | "Not Member" => Role::NotMember,
            "Failover" => match status.trim() {
                "Primary" => Role::Primary,
                "Backup" => Role::Backup,
                other => Role::Unsettled {
                    detail: format!("failover member with status `{other}`"),
                },
            },
            t @ ("Disaster Recovery" | "Read-Only Reporting" | "Read-Write Reporting") => {
                Role::Async {
                    member_type: t.to_string(),
                }
            }
            other => Role::Unsettled {
                detail: format!("member type `{other}`"),
            },
        }
    }

    pub fn is_failover(&self) -> bool {
        matches!(self, Role::Primary | Role::Backup)
    }

    pub fn describe(&self) -> String {
        match self {
            Role::Primary => "primary".into(),
            Role::Backup => "backup failover member".into(),
            Role::Async { member_type } => format!("async member: {member_type}"),
            Role::NotMember => "not a mirror member".into(),
            Role::Unsettled { detail } => format!("unsettled: {detail}"),
        }
    }

    /// Freeze order inside a mirror: async members, then the backup, the primary last.
    pub fn rank(&self) -> u8 {
        match self {
            Role::Async { .. } | Role::NotMember => 0,
            Role::Backup => 1,
            Role::Primary => 2,
            Role::Unsettled { .. } => 3,
        }
    }
}
