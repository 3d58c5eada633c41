use crate::{
    components::layout::Layout,
    i18n::{tr, UiLocale},
    pages::{
        account::{AccountPage, TwoFactorPage},
        billing::BillingPage,
        card::CardPage,
        confirm_payment::ConfirmPaymentPage,
        dashboard::DashboardPage,
        email_links::{ConfirmEmailPage, ReauthLinkPage, VerifyEmailPage},
        homeserver::HomeserverPage,
        homeserver_admin::{HomeserverSettingsPage, HomeserverUsersPage},
        invoices::{InvoicePage, InvoicesPage},
        landing::LandingPage,
        legal::{PrivacyPage, TermsPage},
        not_found::NotFound,
        order::OrderPage,
        password_reset::{ForgotPasswordPage, ResetPasswordPage},
        sign_in::{SecondFactorPage, SignInPage},
        sign_up::{ExternalSignUpPage, SignUpPage},
    },
};
use leptos::prelude::*;
use leptos_meta::{provide_meta_context, Title};
use leptos_router::{
    components::{Route, Router, Routes},
    path, SsrMode,
};

#[component]
pub fn App() -> impl IntoView {
    provide_meta_context();
    provide_context(UiLocale::default());
    // Async everywhere: each page is rendered completely before it is sent, so it works
    // without JavaScript (out-of-order streaming needs a script to fill in).
    let ssr = SsrMode::Async;
    view! {
        <Title formatter=|page: String| format!("{page} · {}", tr("site.name"))/>
        <Router>
            <Layout>
                <Routes fallback=NotFound>
                    <Route path=path!("") view=LandingPage ssr=ssr.clone()/>
                    <Route path=path!("/sign-up") view=SignUpPage ssr=ssr.clone()/>
                    <Route path=path!("/sign-up/external") view=ExternalSignUpPage ssr=ssr.clone()/>
                    <Route path=path!("/sign-in") view=SignInPage ssr=ssr.clone()/>
                    <Route path=path!("/sign-in/two-factor") view=SecondFactorPage ssr=ssr.clone()/>
                    <Route path=path!("/forgot-password") view=ForgotPasswordPage ssr=ssr.clone()/>
                    <Route path=path!("/reset-password/:token") view=ResetPasswordPage ssr=ssr.clone()/>
                    <Route path=path!("/verify-email/:token") view=VerifyEmailPage ssr=ssr.clone()/>
                    <Route path=path!("/confirm-email/:token") view=ConfirmEmailPage ssr=ssr.clone()/>
                    <Route path=path!("/reauth/:token") view=ReauthLinkPage ssr=ssr.clone()/>
                    <Route path=path!("/account") view=AccountPage ssr=ssr.clone()/>
                    <Route path=path!("/account/two-factor") view=TwoFactorPage ssr=ssr.clone()/>
                    <Route path=path!("/billing") view=BillingPage ssr=ssr.clone()/>
                    <Route path=path!("/billing/card") view=CardPage ssr=ssr.clone()/>
                    <Route path=path!("/billing/confirm-payment") view=ConfirmPaymentPage ssr=ssr.clone()/>
                    <Route path=path!("/billing/invoices") view=InvoicesPage ssr=ssr.clone()/>
                    <Route path=path!("/billing/invoices/:id") view=InvoicePage ssr=ssr.clone()/>
                    <Route path=path!("/order") view=OrderPage ssr=ssr.clone()/>
                    <Route path=path!("/dashboard") view=DashboardPage ssr=ssr.clone()/>
                    <Route path=path!("/homeservers/:id") view=HomeserverPage ssr=ssr.clone()/>
                    <Route path=path!("/homeservers/:id/settings") view=HomeserverSettingsPage ssr=ssr.clone()/>
                    <Route path=path!("/homeservers/:id/users") view=HomeserverUsersPage ssr=ssr.clone()/>
                    <Route path=path!("/terms") view=TermsPage ssr=ssr.clone()/>
                    <Route path=path!("/privacy") view=PrivacyPage ssr=ssr/>
                </Routes>
            </Layout>
        </Router>
    }
}
