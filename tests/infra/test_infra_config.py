"""The stage config: defaults per stage, overrides from context, and loud failures naming the field."""

from __future__ import annotations

import re

import pytest

from infra.config import ConfigError, from_context, stage_config

ARN = "arn:aws:sagemaker:eu-west-1:123456789012:model-package/churn-models-prod/7"


def test_prod_keeps_data_and_dev_can_be_destroyed() -> None:
    dev, prod = stage_config("dev"), stage_config("prod")
    assert (dev.retain_data, dev.termination_protection) == (False, False)
    assert (prod.retain_data, prod.termination_protection) == (True, True)
    assert prod.endpoint_min_instances >= 2 > dev.endpoint_min_instances
    assert dev.account is None and dev.region is None  # environment-agnostic by default


def test_names_carry_the_stage_so_both_stages_fit_in_one_account() -> None:
    dev, prod = stage_config("dev"), stage_config("prod")
    names = {(c.pipeline_name, c.model_package_group, c.endpoint_name, c.stack_name("serving")) for c in (dev, prod)}
    assert len(names) == 2
    assert dev.pipeline_name == "churn-training-dev"
    assert prod.stack_name("data-lake") == "mlops-prod-data-lake"


def test_a_misspelt_field_fails_naming_it_and_the_likely_one() -> None:
    hint = "'endpoint_instnce_type' (did you mean 'endpoint_instance_type'?)"
    with pytest.raises(ConfigError, match=re.escape(hint)):
        stage_config("dev", {"endpoint_instnce_type": "ml.m5.large"})


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"endpoint_max_instances": "4"}, "dev.endpoint_max_instances: expected int"),
        ({"retain_data": 1}, "dev.retain_data: expected bool"),
        ({"account": "12345"}, "dev.account"),
        ({"region": "Europe"}, "dev.region"),
        ({"endpoint_instance_type": "m5.large"}, "dev.endpoint_instance_type"),
        ({"etl_schedule": "every day"}, "dev.etl_schedule"),
        ({"endpoint_min_instances": 3, "endpoint_max_instances": 2}, "dev.endpoint_max_instances"),
        ({"nat_gateways": 3, "max_azs": 2}, "dev.nat_gateways"),
        ({"infrequent_access_after_days": 10}, "dev.infrequent_access_after_days"),
        ({"raw_archive_after_days": 90}, "dev.raw_archive_after_days: no longer a field: raw data is never archived"),
        ({"raw_infrequent_access_after_days": 30}, "renamed infrequent_access_after_days"),
        ({"github_oidc_provider_arn": "arn:aws:iam::123456789012:oidc-provider/token.actions.githubusercontent.com"},
         "dev.github_oidc_provider_arn: has no effect without github_repo"),
        ({"github_repo": "acme/churn", "create_github_oidc_provider": True,
          "github_oidc_provider_arn": "arn:aws:iam::123456789012:oidc-provider/token.actions.githubusercontent.com"},
         "dev.create_github_oidc_provider: give github_oidc_provider_arn (import) or create it, not both"),
        ({"github_repo": "acme/churn", "account": "111111111111",
          "github_oidc_provider_arn": "arn:aws:iam::123456789012:oidc-provider/token.actions.githubusercontent.com"},
         "dev.github_oidc_provider_arn: a role trusts a provider of its own account"),
        ({"log_retention_days": 10}, "dev.log_retention_days"),
        ({"github_repo": "not a repo"}, "dev.github_repo"),
        ({"model_package_arn": "arn:aws:s3:::bucket"}, "dev.model_package_arn: no longer a field"),
        ({"mlflow_server_size": "Huge"}, "dev.mlflow_server_size"),
        ({"drift_threshold": 2.0}, "dev.drift_threshold"),
    ],
)
def test_invalid_values_fail_naming_the_field(overrides: dict[str, object], field: str) -> None:
    with pytest.raises(ConfigError, match=re.escape(field)):
        stage_config("dev", overrides)


def test_context_overrides_one_stage_from_json_text_as_cdk_passes_it() -> None:
    configs = from_context({"mlops:prod": '{"region": "eu-west-1", "github_repo": "acme/churn"}'})
    assert configs["prod"].region == "eu-west-1" and configs["prod"].github_repo == "acme/churn"
    assert configs["dev"].region is None


@pytest.mark.parametrize("context", [{"modelPackageArn": ARN}, {"modelPackageARN": ARN},
                                     {"mlops:dev": {"model_package_arn": ARN}}])
def test_a_model_package_in_the_context_fails_naming_the_new_way(context: dict[str, object]) -> None:
    """The approved version deploys through the serving stack's ModelPackageArn parameter now."""
    with pytest.raises(ConfigError, match="ModelPackageArn parameter") as failed:
        from_context(context)
    assert "approv" in str(failed.value)


@pytest.mark.parametrize(
    ("context", "message"),
    [
        ({"mlops:staging": {}}, "'mlops:staging'"),
        ({"mlops:prod": "{region: eu-west-1}"}, "context.mlops:prod: not valid JSON"),
        ({"mlops:prod": ["region"]}, "context.mlops:prod: must be a JSON object"),
        ({"mlops:dev": {"stage": "prod"}}, "dev.stage"),
    ],
)
def test_context_typos_fail_loudly(context: dict[str, object], message: str) -> None:
    with pytest.raises(ConfigError, match=re.escape(message)):
        from_context(context)


def test_cdk_and_feature_flag_context_keys_are_left_alone() -> None:
    configs = from_context({"@aws-cdk/aws-iam:minimizePolicies": True, "aws:cdk:enable-path-metadata": True})
    assert set(configs) == {"dev", "prod"}


# -- the GitHub OIDC provider: one per account --------------------------------------------------------

REPO = "acme/churn"
PROVIDER = "arn:aws:iam::111111111111:oidc-provider/token.actions.githubusercontent.com"


def creates(context: dict[str, object]) -> dict[str, bool | None]:
    return {stage: c.create_github_oidc_provider for stage, c in from_context(context).items()}


def test_by_default_dev_creates_the_provider_and_prod_imports_it() -> None:
    # cdk.json's shape: both stages have CI and no account (environment-agnostic: maybe one account).
    assert creates({"mlops:dev": {"github_repo": REPO}, "mlops:prod": {"github_repo": REPO}}) == {
        "dev": True, "prod": False}


def test_stages_in_different_accounts_each_create_their_own() -> None:
    assert creates({"mlops:dev": {"github_repo": REPO, "account": "111111111111"},
                    "mlops:prod": {"github_repo": REPO, "account": "222222222222"}}) == {"dev": True, "prod": True}
    # Environment-agnostic prod in its own account: say so.
    assert creates({"mlops:dev": {"github_repo": REPO},
                    "mlops:prod": {"github_repo": REPO, "create_github_oidc_provider": True}}) == {
        "dev": True, "prod": True}


def test_an_existing_provider_is_imported_by_every_stage_of_its_account() -> None:
    assert creates({"mlops:dev": {"github_repo": REPO, "github_oidc_provider_arn": PROVIDER},
                    "mlops:prod": {"github_repo": REPO}}) == {"dev": False, "prod": False}
    assert creates({"mlops:prod": {"github_repo": REPO}}) == {"dev": None, "prod": True}  # no CI in dev


def test_two_stages_creating_it_in_one_account_fail_naming_both() -> None:
    same = {"github_repo": REPO, "account": "111111111111"}
    with pytest.raises(ConfigError, match=re.escape("prod.create_github_oidc_provider: dev already creates the "
                                                    "GitHub OIDC provider of account 111111111111")):
        from_context({"mlops:dev": same, "mlops:prod": {**same, "create_github_oidc_provider": True}})
    with pytest.raises(ConfigError, match=re.escape("dev already imports an existing")):
        from_context({"mlops:dev": {**same, "github_oidc_provider_arn": PROVIDER},
                      "mlops:prod": {**same, "create_github_oidc_provider": True}})
