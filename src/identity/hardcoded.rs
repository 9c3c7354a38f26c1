//! Fulcio's hard-coded CI identity types (`github-workflow`, `gitlab-pipeline`,
//! `buildkite-job`, `codefresh-workflow`) and `chainguard-identity`. The public-good
//! deployment now routes CI providers through `ci-provider` templates, but configurations
//! that name these types keep working.

use super::claims::Claims;
use super::{IdentityError, join_path};
use crate::model::{Extensions, Field, Principal, SubjectAltName};
use serde_json::Value;

fn uri_san(v: &str) -> Result<SubjectAltName, IdentityError> {
    SubjectAltName::uri(v).map_err(|e| IdentityError::Claim(e.to_string()))
}

fn base(claims: &Claims<'_>, sub: &str) -> Extensions {
    let mut ext = Extensions::default();
    ext.set(Field::Issuer, claims.issuer());
    ext.set(Field::Subject, sub);
    ext
}

pub fn github(claims: &Claims<'_>) -> Result<Principal, IdentityError> {
    let sub = claims.subject()?;
    let c = |n: &str| claims.required_string(n);
    let job_workflow_ref = c("job_workflow_ref")?;
    let sha = c("sha")?;
    let event_name = c("event_name")?;
    let repository = c("repository")?;
    let workflow = c("workflow")?;
    let git_ref = c("ref")?;
    let job_workflow_sha = c("job_workflow_sha")?;
    let runner_environment = c("runner_environment")?;
    let repository_id = c("repository_id")?;
    let repository_owner = c("repository_owner")?;
    let repository_owner_id = c("repository_owner_id")?;
    let repository_visibility = c("repository_visibility")?;
    let workflow_ref = c("workflow_ref")?;
    let workflow_sha = c("workflow_sha")?;
    let run_id = c("run_id")?;
    let run_attempt = c("run_attempt")?;
    let gh = "https://github.com/";
    let san = join_path(gh, &[job_workflow_ref]);
    let mut ext = base(claims, sub);
    ext.set(Field::GithubWorkflowTrigger, event_name);
    ext.set(Field::GithubWorkflowSha, sha);
    ext.set(Field::GithubWorkflowName, workflow);
    ext.set(Field::GithubWorkflowRepository, repository);
    ext.set(Field::GithubWorkflowRef, git_ref);
    ext.set(Field::BuildSignerUri, san.clone());
    ext.set(Field::BuildSignerDigest, job_workflow_sha);
    ext.set(Field::RunnerEnvironment, runner_environment);
    ext.set(Field::SourceRepositoryUri, join_path(gh, &[repository]));
    ext.set(Field::SourceRepositoryDigest, sha);
    ext.set(Field::SourceRepositoryRef, git_ref);
    ext.set(Field::SourceRepositoryIdentifier, repository_id);
    ext.set(
        Field::SourceRepositoryOwnerUri,
        join_path(gh, &[repository_owner]),
    );
    ext.set(Field::SourceRepositoryOwnerIdentifier, repository_owner_id);
    ext.set(Field::BuildConfigUri, join_path(gh, &[workflow_ref]));
    ext.set(Field::BuildConfigDigest, workflow_sha);
    ext.set(Field::BuildTrigger, event_name);
    ext.set(
        Field::RunInvocationUri,
        join_path(
            gh,
            &[repository, "actions/runs", run_id, "attempts", run_attempt],
        ),
    );
    ext.set(
        Field::SourceRepositoryVisibilityAtSigning,
        repository_visibility,
    );
    Ok(Principal {
        challenge: sub.to_string(),
        san: uri_san(&san)?,
        extensions: ext,
    })
}

pub fn gitlab(claims: &Claims<'_>) -> Result<Principal, IdentityError> {
    let sub = claims.subject()?;
    let c = |n: &str| claims.required_string(n);
    let project_path = c("project_path")?;
    let pipeline_source = c("pipeline_source")?;
    c("pipeline_id")?;
    let ci_config_ref_uri = c("ci_config_ref_uri")?;
    let job_id = c("job_id")?;
    let git_ref = c("ref")?;
    let ref_type = c("ref_type")?;
    let namespace_path = c("namespace_path")?;
    let namespace_id = c("namespace_id")?;
    let project_id = c("project_id")?;
    let sha = c("sha")?;
    let runner_environment = c("runner_environment")?;
    match claims.get("runner_id") {
        Some(Value::Number(n)) if n.as_i64().is_some_and(|v| v != 0) => {}
        _ => {
            return Err(IdentityError::Claim(
                "missing runner_id claim in ID token".into(),
            ));
        }
    }
    let ci_config_sha = claims.optional_string("ci_config_sha")?.unwrap_or("");
    let visibility = claims.optional_string("project_visibility")?.unwrap_or("");
    let full_ref = match ref_type {
        "branch" => format!("refs/heads/{git_ref}"),
        "tag" => format!("refs/tags/{git_ref}"),
        other => {
            return Err(IdentityError::Claim(format!(
                "unexpected ref_type: {other}"
            )));
        }
    };
    // ci_config_ref_uri has no scheme (gitlab.com/group/proj//.gitlab-ci.yml@refs/heads/main).
    let config_uri = format!("https://{ci_config_ref_uri}");
    url::Url::parse(&config_uri)
        .map_err(|e| IdentityError::Template(format!("ci_config_ref_uri: {e}")))?;
    let gl = "https://gitlab.com/";
    let mut ext = base(claims, sub);
    ext.set(Field::BuildSignerUri, config_uri.clone());
    ext.set(Field::BuildSignerDigest, ci_config_sha);
    ext.set(Field::RunnerEnvironment, runner_environment);
    ext.set(Field::SourceRepositoryUri, join_path(gl, &[project_path]));
    ext.set(Field::SourceRepositoryDigest, sha);
    ext.set(Field::SourceRepositoryRef, full_ref);
    ext.set(Field::SourceRepositoryIdentifier, project_id);
    ext.set(
        Field::SourceRepositoryOwnerUri,
        join_path(gl, &[namespace_path]),
    );
    ext.set(Field::SourceRepositoryOwnerIdentifier, namespace_id);
    ext.set(Field::BuildConfigUri, config_uri.clone());
    ext.set(Field::BuildConfigDigest, ci_config_sha);
    ext.set(Field::BuildTrigger, pipeline_source);
    ext.set(
        Field::RunInvocationUri,
        join_path(gl, &[project_path, "/-/jobs/", job_id]),
    );
    ext.set(Field::SourceRepositoryVisibilityAtSigning, visibility);
    Ok(Principal {
        challenge: sub.to_string(),
        san: uri_san(&config_uri)?,
        extensions: ext,
    })
}

pub fn buildkite(claims: &Claims<'_>) -> Result<Principal, IdentityError> {
    let sub = claims.subject()?;
    let org = claims.required_string("organization_slug")?;
    let pipeline = claims.required_string("pipeline_slug")?;
    let san = join_path("https://buildkite.com", &[org, pipeline]);
    Ok(Principal {
        challenge: sub.to_string(),
        san: uri_san(&san)?,
        extensions: base(claims, sub),
    })
}

pub fn codefresh(claims: &Claims<'_>) -> Result<Principal, IdentityError> {
    let sub = claims.subject()?;
    let account_id = claims.required_string("account_id")?;
    let pipeline_id = claims.required_string("pipeline_id")?;
    let workflow_id = claims.required_string("workflow_id")?;
    let opt = |n: &str| claims.optional_string(n).map(|v| v.unwrap_or(""));
    let account_name = opt("account_name")?;
    let pipeline_name = opt("pipeline_name")?;
    let platform = match opt("platform_url")? {
        "" => "https://g.codefresh.io",
        p => p,
    };
    let san = join_path(
        platform,
        &[
            account_name,
            &format!("{pipeline_name}:{account_id}/{pipeline_id}"),
        ],
    );
    let build = join_path(platform, &["build", workflow_id]);
    let mut ext = base(claims, sub);
    ext.set(Field::BuildSignerUri, build.clone());
    ext.set(Field::RunnerEnvironment, opt("runner_environment")?);
    ext.set(Field::SourceRepositoryUri, opt("scm_repo_url")?);
    ext.set(Field::SourceRepositoryRef, opt("scm_ref")?);
    ext.set(Field::BuildConfigUri, build.clone());
    ext.set(Field::RunInvocationUri, build);
    Ok(Principal {
        challenge: sub.to_string(),
        san: uri_san(&san)?,
        extensions: ext,
    })
}

pub fn chainguard(claims: &Claims<'_>) -> Result<Principal, IdentityError> {
    let sub = claims.subject()?;
    // What cosign signs: the email when the token has one (it must be verified), else sub.
    let challenge = match claims.optional_string("email")? {
        Some(email) if !email.is_empty() => {
            if !claims.email_verified()? {
                return Err(IdentityError::Claim(
                    "email_verified claim is not true".into(),
                ));
            }
            email
        }
        _ => sub,
    };
    let san = join_path(claims.issuer(), &[sub]);
    Ok(Principal {
        challenge: challenge.to_string(),
        san: uri_san(&san)?,
        extensions: base(claims, sub),
    })
}
