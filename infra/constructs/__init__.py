"""One Construct per concern, in the order the data flows through them.

    network        the VPC the jobs and the endpoint run in (and what a role needs to join it)
    data_lake      key, zone buckets (secure_bucket), Glue database: where the data lands
    glue_etl/      raw -> curated: the Glue job, the crawler, the workflow that starts them
    ml_pipeline    curated -> registered model: the SageMaker pipeline, its role and triggers
    serving        approved model -> endpoint (data capture on), blue/green, autoscaling
    model_monitor/ captured traffic vs the baseline -> drift alarms -> retrain
    ci_access      who may ship code and start the pipeline from GitHub

    rule_targets   EventBridge targets shared by glue_etl, ml_pipeline and model_monitor

A concern that builds more than one thing is a package of child constructs, composed by its
parent (glue_etl.GlueEtl, model_monitor.ModelMonitor).
"""
