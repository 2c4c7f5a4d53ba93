"""The deployed stack's outputs as NAME=value lines, the environment the next CI steps
need (scripts/ci/stack-env.sh).

    python scripts/ci/stack_outputs.py STACK
"""
import sys
import boto3
import botocore.exceptions

stack = sys.argv[1]
try:
    outputs = boto3.client("cloudformation").describe_stacks(StackName=stack)["Stacks"][0].get("Outputs", [])
except botocore.exceptions.ClientError as e:
    sys.exit(f"the stack {stack} cannot be read ({e.response['Error']['Code']}): deploy it first (docs/deploy.md)")
out = {o["OutputKey"]: o["OutputValue"] for o in outputs}
names = {"RPS_STORE": ("DataBucketName", "s3://{}/store"), "RPS_API_URL": ("ApiUrl", "{}"),
         "RPS_STATE_MACHINE_ARN": ("StateMachineArn", "{}"), "RPS_VERIFY_FUNCTION": ("VerifyFunctionName", "{}")}
for name, (key, form) in names.items():
    if key not in out:
        sys.exit(f"the stack {stack} has no output {key}")
    print(f"{name}={form.format(out[key])}")
