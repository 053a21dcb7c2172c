//! The one signal wait: SIGTERM (systemd's stop) or SIGINT (Ctrl-C).

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

/// Resolves when the process is told to stop.
pub async fn terminated() {
    use tokio::signal::unix::{signal, SignalKind};
    let mut term = signal(SignalKind::terminate()).ok();
    let sigterm = async {
        match term.as_mut() {
            Some(t) => {
                t.recv().await;
            }
            None => std::future::pending().await,
        }
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = sigterm => {}
    }
}

/// A flag set when the process is told to stop, for a synchronous loop
/// (`flatback record` closes its file properly). A thread of its own waits.
pub fn flag() -> std::io::Result<Arc<AtomicBool>> {
    let flag = Arc::new(AtomicBool::new(false));
    let set = Arc::clone(&flag);
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    std::thread::Builder::new()
        .name("flatback-signals".into())
        .spawn(move || {
            runtime.block_on(terminated());
            set.store(true, Ordering::Relaxed);
        })?;
    Ok(flag)
}
