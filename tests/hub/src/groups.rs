//! Group membership per hub (`JoinGroup`, `LeaveGroup`, `SendToGroup`).

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};

use signalr_native::protocol::Payload;

use crate::connections::{Connection, HubKind};
use crate::hub_methods::{Call, HubError};

/// Members of each (hub, group), by connection id.
type Members = HashMap<(HubKind, String), HashMap<String, Arc<Connection>>>;

#[derive(Default)]
pub struct Groups {
    members: Mutex<Members>,
}

impl Groups {
    fn lock(&self) -> MutexGuard<'_, Members> {
        self.members.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn join(&self, conn: &Arc<Connection>, group: String) {
        self.lock().entry((conn.hub, group)).or_default().insert(conn.id.clone(), conn.clone());
    }

    fn leave(&self, conn: &Connection, group: String) {
        let mut members = self.lock();
        let key = (conn.hub, group);
        if let Some(group) = members.get_mut(&key) {
            group.remove(&conn.id);
            if group.is_empty() {
                members.remove(&key);
            }
        }
    }

    fn members(&self, hub: HubKind, group: String) -> Vec<Arc<Connection>> {
        self.lock().get(&(hub, group)).map(|m| m.values().cloned().collect()).unwrap_or_default()
    }

    /// A connection ended: it leaves every group.
    pub fn remove_connection(&self, connection_id: &str) {
        self.lock().retain(|_, members| {
            members.remove(connection_id);
            !members.is_empty()
        });
    }
}

pub async fn join_group(call: &mut Call) -> Result<Payload, HubError> {
    let group: String = call.arg(0)?;
    call.app.groups.join(&call.conn, group);
    Ok(call.null())
}

pub async fn leave_group(call: &mut Call) -> Result<Payload, HubError> {
    let group: String = call.arg(0)?;
    call.app.groups.leave(&call.conn, group);
    Ok(call.null())
}

pub async fn send_to_group(call: &mut Call) -> Result<Payload, HubError> {
    let group: String = call.arg(0)?;
    let invocation = call.invocation_from_args(1)?;
    let members = call.app.groups.members(call.conn.hub, group);
    crate::hub_methods::send_to_all(&members, &invocation).await;
    Ok(call.null())
}
