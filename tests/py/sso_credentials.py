"""Resolves an SSO profile with boto3 (SSO token from ~/.aws/sso/cache, role credentials from
the portal at AWS_ENDPOINT_URL_SSO) and prints the access key id as JSON (never the secret)."""
import json
import sys

import boto3

session = boto3.Session(profile_name=sys.argv[1])
creds = session.get_credentials().get_frozen_credentials()
print(json.dumps({"AccessKeyId": creds.access_key, "Method": session.get_credentials().method}))
