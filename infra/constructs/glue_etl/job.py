"""The ETL job: training_code/etl.py on Glue 5 (PySpark), the packages it imports, its spec, its role."""

from __future__ import annotations

import atexit
import shutil
import tempfile
import zipfile
from collections.abc import Sequence
from pathlib import Path, PurePosixPath

from aws_cdk import Duration
from aws_cdk import aws_glue as glue
from aws_cdk import aws_iam as iam
from aws_cdk import aws_s3_assets as s3_assets
from constructs import Construct

from infra.constructs.data_lake import ETL_REPORTS_PREFIX, DataLake, s3_uri
from infra.constructs.glue_etl.logs import GLUE_LOGS, grant_glue_logs
from infra.nag import GRANT_ACTIONS, acknowledge, bucket_objects
from pipelines.bundles import import_closure
from pipelines.paths import TRAINING_CODE

ETL_SCRIPT = TRAINING_CODE / "etl.py"
_ZIP_TIME = (1980, 1, 1, 0, 0, 0)


def etl_modules(script: Path = ETL_SCRIPT, root: Path = TRAINING_CODE) -> list[Path]:
    """The files of `root` that `script` imports, directly or through each other, packages'
    __init__.py included (sorted; the script itself is not one of them).

    Glue runs the script alone: everything it imports from training_code/ ships as --extra-py-files.
    """
    script = script.resolve()
    return [p for p in import_closure([script], root) if p != script]


def modules_zip(modules: Sequence[Path], root: Path = TRAINING_CODE) -> Path:
    """The modules in one deterministic zip (fixed times, modes and order), each at its path
    relative to `root`, so packages stay packages; in a folder removed at exit.

    Glue puts an --extra-py-files zip on the Python path; single .py files would arrive under
    their asset names (<hash>.py) and could not be imported by name. Every folder has its own
    entry too, which zipimport needs to find a namespace package (a folder without __init__.py).
    """
    base = root.resolve()
    files = {PurePosixPath(m.resolve().relative_to(base).as_posix()): m for m in modules}
    folders = {parent for name in files for parent in name.parents if parent != PurePosixPath(".")}
    folder = Path(tempfile.mkdtemp(prefix="mlops-glue-modules-"))
    atexit.register(shutil.rmtree, folder, ignore_errors=True)
    target = folder / "etl_modules.zip"
    with zipfile.ZipFile(target, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        for name in sorted([*files, *folders], key=str):
            if name in folders:
                info = zipfile.ZipInfo(f"{name}/", date_time=_ZIP_TIME)
                info.external_attr = (0o40755 << 16) | 0x10  # a directory, for Unix and for DOS
                zf.writestr(info, b"")
                continue
            info = zipfile.ZipInfo(str(name), date_time=_ZIP_TIME)
            info.external_attr = 0o644 << 16
            info.compress_type = zipfile.ZIP_DEFLATED
            zf.writestr(info, files[name].read_bytes())
    return target


class EtlJob(Construct):
    """training_code/etl.py as a Glue 5 PySpark job with its own least-privilege role.

    The job itself is this construct's `Default` child: its logical id is the one it had before
    the ETL was split into child constructs (and the data-lake stack's export of its name with it).
    """

    def __init__(
        self,
        scope: Construct,
        id_: str,
        *,
        lake: DataLake,
        dataset: str,
        spec: Path,
        workers: int,
        security_configuration: glue.ISecurityConfiguration,
    ) -> None:
        super().__init__(scope, id_)
        self.raw_uri = s3_uri(lake.raw)
        self.curated_uri = s3_uri(lake.curated, f"{dataset}/")
        self.quarantine_uri = s3_uri(lake.quarantine, f"{dataset}/")
        self.report_uri = s3_uri(lake.artifacts, f"{ETL_REPORTS_PREFIX}{dataset}/")

        self.role = iam.Role(self, "Role", assumed_by=iam.ServicePrincipal("glue.amazonaws.com"),
                             description="Glue ETL job: read raw, write curated/quarantine/report")
        lake.raw.grant_read(self.role)
        # After its ledger entry (<curated>/_ledger/, below the curated grant) the job tags each raw
        # object it processed mlops:processed=true, the version it read (VersionId, hence the Version
        # actions), keeping the object's other tags (read with GetObject*Tagging, part of grant_read);
        # the raw lifecycle archives tagged objects only.
        self.role.add_to_policy(iam.PolicyStatement(
            sid="TagProcessedRawObjects", actions=["s3:PutObjectTagging", "s3:PutObjectVersionTagging"],
            resources=[lake.raw.arn_for_objects("*")],
        ))
        lake.curated.grant_read_write(self.role, f"{dataset}/*")
        lake.quarantine.grant_read_write(self.role, f"{dataset}/*")
        lake.artifacts.grant_read_write(self.role, f"{ETL_REPORTS_PREFIX}{dataset}/*")
        grant_glue_logs(self.role, lake.key, "jobs")
        # The job runs with --enable-metrics and --enable-observability-metrics (CDK's defaults for a
        # Glue 5 job): its driver publishes them with this role.
        self.role.add_to_policy(iam.PolicyStatement(
            sid="JobMetrics", actions=["cloudwatch:PutMetricData"], resources=["*"],
            conditions={"StringEquals": {"cloudwatch:namespace": "Glue"}},
        ))
        acknowledge(
            self.role, "AwsSolutions-IAM5",
            "The job reads raw objects and tags those it has processed (any key: raw data lands under any "
            "prefix), and writes only under its data set's prefix of the curated and "
            "quarantine zones and of the ETL reports; Glue names its log groups per job under /aws-glue/jobs; "
            "CloudWatch metrics take no resource (bound to the Glue namespace).",
            findings=[*GRANT_ACTIONS, bucket_objects("Raw"),
                      bucket_objects("Curated", "Quarantine", prefix=f"{dataset}/"),
                      bucket_objects("Artifacts", prefix=f"{ETL_REPORTS_PREFIX}{dataset}/"), GLUE_LOGS,
                      r"Resource::\*"],
        )

        # File assets, read through Code.from_bucket so the role may read these three objects only.
        self.modules = etl_modules()
        script = s3_assets.Asset(self, "Script", path=str(ETL_SCRIPT))
        modules = s3_assets.Asset(self, "Modules", path=str(modules_zip(self.modules)))
        spec_file = s3_assets.Asset(self, "Spec", path=str(spec))
        # Glue copies an --extra-files object into the working directory under its key's base
        # name, which for an asset is <hash>.json: that is the name the script is given.
        self.spec_name = spec_file.s3_object_key.rsplit("/", 1)[-1]

        def code(asset: s3_assets.Asset) -> glue.Code:
            return glue.Code.from_bucket(asset.bucket, asset.s3_object_key)

        self.job = glue.PySparkEtlJob(
            self,
            "Default",
            role=self.role,
            glue_version=glue.GlueVersion.V5_0,
            script=code(script),
            extra_python_files=[code(modules)],
            extra_files=[code(spec_file)],
            worker_configuration=glue.WorkerConfiguration(worker_type=glue.WorkerType.G_1X,
                                                          number_of_workers=workers),
            max_concurrent_runs=1,
            max_retries=1,
            timeout=Duration.hours(2),
            security_configuration=security_configuration,
            continuous_logging=glue.ContinuousLoggingProps(enabled=True),
            description=f"Raw to curated for the {dataset} data set (training_code/etl.py)",
            default_arguments={
                "--raw_path": self.raw_uri,
                "--curated_path": self.curated_uri,
                "--quarantine_path": self.quarantine_uri,
                "--report_path": self.report_uri,
                "--spec_path": self.spec_name,
                # The ledger under --curated_path/_ledger/ makes the job incremental, not bookmarks: they
                # track DynamicFrame sources only, and etl.py reads with Spark's reader (it keeps raw
                # text for the quarantine). Enabled, they would filter nothing and suggest otherwise.
                "--job-bookmark-option": "job-bookmark-disable",
            },
        )
