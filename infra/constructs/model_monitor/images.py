"""Where the SageMaker Model Monitor analyzer image lives, per region, without a network look-up.

The same registry accounts as the SageMaker Python SDK's `image_uri_config/model-monitor.json`
(a test checks that they agree); the template resolves the region at deploy time through a
CloudFormation mapping, so one environment-agnostic template serves every region listed here.
"""

from __future__ import annotations

ANALYZER_REPOSITORY = "sagemaker-model-monitor-analyzer"

ANALYZER_REGISTRIES: dict[str, str] = {
    "af-south-1": "875698925577",
    "ap-east-1": "001633400207",
    "ap-northeast-1": "574779866223",
    "ap-northeast-2": "709848358524",
    "ap-northeast-3": "990339680094",
    "ap-south-1": "126357580389",
    "ap-southeast-1": "245545462676",
    "ap-southeast-2": "563025443158",
    "ap-southeast-3": "669540362728",
    "ca-central-1": "536280801234",
    "cn-north-1": "453000072557",
    "cn-northwest-1": "453252182341",
    "eu-central-1": "048819808253",
    "eu-central-2": "590183933784",
    "eu-north-1": "895015795356",
    "eu-south-1": "933208885752",
    "eu-south-2": "437450045455",
    "eu-west-1": "468650794304",
    "eu-west-2": "749857270468",
    "eu-west-3": "680080141114",
    "il-central-1": "843974653677",
    "me-central-1": "588750061953",
    "me-south-1": "607024016150",
    "sa-east-1": "539772159869",
    "us-east-1": "156813124566",
    "us-east-2": "777275614652",
    "us-west-1": "890145073186",
    "us-west-2": "159807026194",
}


def analyzer_image_uri(region: str, url_suffix: str = "amazonaws.com") -> str:
    """The analyzer image for a known region (KeyError naming the region otherwise)."""
    try:
        account = ANALYZER_REGISTRIES[region]
    except KeyError:
        raise KeyError(f"Model Monitor has no analyzer image registry for region {region!r}") from None
    return f"{account}.dkr.ecr.{region}.{url_suffix}/{ANALYZER_REPOSITORY}"
