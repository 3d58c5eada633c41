//! While a homeserver is being set up, its page watches its state: an island that asks every
//! three seconds (a read) and reloads the page when the state changed, so the URL and the
//! password appear when it runs. Without JavaScript the page has a "Refresh" link instead.

use leptos::prelude::*;

#[island]
pub fn HostWatch(subscription: String, state_key: String) -> impl IntoView {
    #[cfg(feature = "hydrate")]
    {
        let handle = set_interval_with_handle(
            move || {
                let (subscription, state_key) = (subscription.clone(), state_key.clone());
                leptos::task::spawn_local(async move {
                    if let Ok(now) = crate::server_fns::orders::homeserver_state(subscription).await
                    {
                        if now != state_key {
                            let _ = window().location().reload();
                        }
                    }
                });
            },
            std::time::Duration::from_secs(3),
        );
        on_cleanup(move || {
            if let Ok(handle) = handle {
                handle.clear();
            }
        });
    }
    #[cfg(not(feature = "hydrate"))]
    let _ = (subscription, state_key);
}
