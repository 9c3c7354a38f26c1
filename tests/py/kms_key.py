"""Create a signing key in a KMS endpoint (moto's server in the tests) and give it an alias.

usage: kms_key.py ENDPOINT_URL ALIAS [KEY_SPEC]
prints JSON: {"key_id": ..., "arn": ..., "alias": "alias/..."}
"""
import json
import sys

import boto3


def main() -> None:
    endpoint, alias = sys.argv[1:3]
    spec = sys.argv[3] if len(sys.argv) > 3 else "ECC_NIST_P256"
    kms = boto3.client(
        "kms",
        endpoint_url=endpoint,
        region_name="us-east-1",
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )
    key = kms.create_key(KeySpec=spec, KeyUsage="SIGN_VERIFY")["KeyMetadata"]
    kms.create_alias(AliasName=f"alias/{alias}", TargetKeyId=key["KeyId"])
    json.dump({"key_id": key["KeyId"], "arn": key["Arn"], "alias": f"alias/{alias}"}, sys.stdout)


if __name__ == "__main__":
    main()
