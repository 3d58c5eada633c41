use crate::{i18n::tr, server_fns::account::current_viewer};
use leptos::prelude::*;

/// Header, navigation and footer around every page.
#[component]
pub fn Layout(children: Children) -> impl IntoView {
    let viewer = Resource::new_blocking(|| (), |_| current_viewer());
    view! {
        <a class="skip-link" href="#content">{tr("site.skip_to_content")}</a>
        <header class="site-header">
            <div class="container header-row">
                <a class="brand" href="/">
                    <svg class="brand-mark" viewBox="0 0 32 32" aria-hidden="true" width="28" height="28">
                        <path d="M4 3h3v26H4zM25 3h3v26h-3zM9 11h3.2v1.6c.9-1.2 2.2-1.9 3.8-1.9 1.7 0 2.9.7 3.5 2 .9-1.3 2.3-2 4-2 2.6 0 4 1.6 4 4.4V23h-3.3v-7c0-1.5-.6-2.2-1.9-2.2-1.4 0-2.2.9-2.2 2.5V23h-3.3v-7c0-1.5-.6-2.2-1.9-2.2-1.4 0-2.2.9-2.2 2.5V23H9z" fill="currentColor"/>
                    </svg>
                    <span>{tr("site.name")}</span>
                </a>
                <nav aria-label=tr("site.nav_label")>
                    <ul class="nav-list">
                        <li><a href="/#pricing">{tr("site.nav_pricing")}</a></li>
                        <Suspense fallback=|| ()>
                            {move || Suspend::new(async move {
                                match viewer.await.ok().flatten() {
                                    Some(viewer) => view! {
                                        <li><a href="/dashboard">{tr("site.nav_dashboard")}</a></li>
                                        <li><a href="/billing">{tr("site.nav_billing")}</a></li>
                                        <li><a href="/account">{tr("site.nav_account")}<span class="visually-hidden">{format!(" ({})", viewer.display_name)}</span></a></li>
                                        <li>
                                            <form method="post" action="/sign-out" class="inline">
                                                <button class="link-button" type="submit">{tr("site.nav_sign_out")}</button>
                                            </form>
                                        </li>
                                    }.into_any(),
                                    None => view! {
                                        <li><a href="/sign-in">{tr("site.nav_sign_in")}</a></li>
                                        <li><a class="button primary small" href="/sign-up">{tr("site.nav_sign_up")}</a></li>
                                    }.into_any(),
                                }
                            })}
                        </Suspense>
                    </ul>
                </nav>
            </div>
        </header>
        <Suspense fallback=|| ()>
            {move || Suspend::new(async move {
                viewer.await.ok().flatten().filter(|v| v.past_due).map(|_| view! {
                    <div class="banner" role="alert">
                        <p class="container">{tr("banner.past_due")}" "
                            <a class="button small" href="/billing/card" rel="external">{tr("banner.update_card")}</a></p>
                    </div>
                })
            })}
        </Suspense>
        <main id="content" tabindex="-1">{children()}</main>
        <footer class="site-footer">
            <div class="container footer-row">
                <span>{tr("site.footer_rights")}</span>
                <a href="/.well-known/security.txt" rel="external">{tr("site.footer_security")}</a>
            </div>
        </footer>
    }
}
