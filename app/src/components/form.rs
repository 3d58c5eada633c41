//! Form building blocks: labelled fields with their message, and the flash messages.

use crate::forms::Flash;
use leptos::prelude::*;

/// A labelled input. Passwords and codes are never filled in again; other values come back
/// from the flash after a refused post, with the field's message under it.
#[component]
pub fn Field(
    flash: Flash,
    form: &'static str,
    name: &'static str,
    label: String,
    #[prop(default = "text")] kind: &'static str,
    #[prop(default = "off")] autocomplete: &'static str,
    #[prop(optional)] hint: Option<String>,
    #[prop(default = true)] required: bool,
    #[prop(optional)] value: Option<String>,
    #[prop(optional)] inputmode: Option<&'static str>,
) -> impl IntoView {
    let id = format!("{form}-{name}");
    let error = flash.error(form, name);
    let has_error = error.is_some();
    let secret = kind == "password" || inputmode == Some("numeric");
    let value = if secret {
        String::new()
    } else {
        Some(flash.value(form, name))
            .filter(|v| !v.is_empty())
            .or(value)
            .unwrap_or_default()
    };
    let hint_id = format!("{id}-hint");
    let error_id = format!("{id}-error");
    let described = [
        hint.as_ref().map(|_| hint_id.clone()),
        error.as_ref().map(|_| error_id.clone()),
    ]
    .into_iter()
    .flatten()
    .collect::<Vec<_>>()
    .join(" ");
    view! {
        <div class="field" class:has-error=has_error>
            <label for=id.clone()>{label}</label>
            {hint.map(|hint| view! { <p class="hint" id=hint_id.clone()>{hint}</p> })}
            <input
                id=id
                name=name
                type=kind
                value=value
                autocomplete=autocomplete
                inputmode=inputmode
                required=required
                aria-invalid=error.as_ref().map(|_| "true")
                aria-describedby=(!described.is_empty()).then_some(described)
            />
            {error.map(|error| view! { <p class="field-error" id=error_id>{error}</p> })}
        </div>
    }
}

/// A required checkbox with its label and message.
#[component]
pub fn Checkbox(
    flash: Flash,
    form: &'static str,
    name: &'static str,
    children: Children,
) -> impl IntoView {
    let id = format!("{form}-{name}");
    let error = flash.error(form, name);
    let has_error = error.is_some();
    let checked = flash.value(form, name) == "on";
    let error_id = format!("{id}-error");
    view! {
        <div class="field checkbox" class:has-error=has_error>
            <input
                id=id.clone()
                name=name
                type="checkbox"
                checked=checked
                required=true
                aria-invalid=error.as_ref().map(|_| "true")
                aria-describedby=error.as_ref().map(|_| error_id.clone())
            />
            <label for=id>{children()}</label>
            {error.map(|error| view! { <p class="field-error" id=error_id>{error}</p> })}
        </div>
    }
}

/// The notice or alert of the flash; `form` limits alerts to that form's.
#[component]
pub fn FlashMessages(flash: Flash, #[prop(optional)] form: Option<&'static str>) -> impl IntoView {
    let alert = match form {
        Some(form) => flash.alert_for(form),
        None => flash.alert.clone(),
    };
    let field_errors = form.is_some_and(|form| flash.form == form && !flash.errors.is_empty());
    view! {
        {flash.notice.clone().map(|text| view! { <p class="notice" role="status">{text}</p> })}
        {alert.map(|text| view! { <p class="alert" role="alert">{text}</p> })}
        {field_errors.then(|| view! { <p class="alert" role="alert">{crate::i18n::tr("form.fix_errors")}</p> })}
    }
}

/// Renders a page section once the flash has been read.
pub fn with_flash<V: IntoView + 'static>(
    flash: Resource<Result<Option<Flash>, ServerFnError>>,
    body: impl Fn(Flash) -> V + Send + Sync + Clone + 'static,
) -> impl IntoView {
    view! {
        <Suspense fallback=|| ()>
            {move || {
                let body = body.clone();
                Suspend::new(async move {
                    let flash = flash.await.ok().flatten().unwrap_or_default();
                    body(flash)
                })
            }}
        </Suspense>
    }
}

/// "Continue with …" links for the configured external providers (none: nothing shown).
#[component]
pub fn ProviderButtons() -> impl IntoView {
    let providers = use_context::<crate::server_fns::AuthProviders>()
        .unwrap_or_default()
        .0;
    (!providers.is_empty()).then(|| {
        view! {
            <div class="providers">
                <p class="divider"><span>{crate::i18n::tr("external.or")}</span></p>
                {providers
                    .into_iter()
                    .map(|(id, name)| view! {
                        <a class="button provider" href=format!("/auth/{id}/start")>
                            {crate::i18n::tr("external.continue_with").replace("%{provider}", &name)}
                        </a>
                    })
                    .collect_view()}
            </div>
        }
    })
}
