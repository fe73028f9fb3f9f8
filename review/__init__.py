"""A pull-request reviewer for any CDK app: what a change does to the infrastructure.

`compare` synthesizes the app at a base git ref and in the working tree, with no credentials
(`synth`), reads both cloud assemblies (`assembly`), runs the CDK's own template diff per stack
(`cdkdiff`) and classifies what it finds: data loss, IAM widening (`iam`), network exposure
(`network`), cdk-nag findings, and the monthly cost change of the instances touched (`cost`, with
the price table `prices.json`); `values` renders CloudFormation values for all of them. `report`
turns the result into Markdown for a pull-request comment.

The package knows nothing of the ML pipeline, the project's stacks or its training code (a test
holds it to that); `mlops infra diff` is its command line.
"""
