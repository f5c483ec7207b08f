//! Credentials re-read while a server runs (issue 33): a CRL, the gateway's paas file. One loop per
//! file, woken every poll interval and at once by SIGHUP; the check itself decides whether anything
//! changed and what to keep when the new file is refused.

use std::time::Duration;

/// Runs `check` every `poll` and on each SIGHUP, in the background, for as long as the process lives.
pub fn every_tick_or_hangup(poll: Duration, mut check: impl FnMut() + Send + 'static) {
    tokio::spawn(async move {
        #[cfg(unix)]
        let mut hup = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup()).ok();
        loop {
            #[cfg(unix)]
            {
                let hangup = async {
                    match hup.as_mut() {
                        Some(h) => {
                            h.recv().await;
                        }
                        None => std::future::pending::<()>().await,
                    }
                };
                tokio::select! {
                    _ = tokio::time::sleep(poll) => {},
                    _ = hangup => {},
                }
            }
            #[cfg(not(unix))]
            tokio::time::sleep(poll).await;
            check();
        }
    });
}
