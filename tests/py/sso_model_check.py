#!/usr/bin/env python3
"""Checks the project's fake IAM Identity Center against botocore's service models.

    sso_model_check.py ENDPOINT

Prints, as JSON, what the models say (the HTTP status of every error shape of `sso-oidc` and
`sso`, the method and path of the operations the fake serves, where GetRoleCredentials puts
the access token), then drives the fake at ENDPOINT with botocore's own clients, which build
requests and parse answers from those models: every answer must parse, every error must carry
the code and HTTP status the model gives its shape, and every field of a success must be a
member of the model's output shape. The caller passes the tokens of one login in
SSO_CHECK_ACCESS_TOKEN, SSO_CHECK_REFRESH_TOKEN, SSO_CHECK_CLIENT_ID, SSO_CHECK_CLIENT_SECRET
and has told the fake to answer the first device-code poll with SlowDownException.
Exits 1 naming the first disagreement.
"""

import json
import os
import sys

import botocore.session
from botocore import UNSIGNED
from botocore.config import Config
from botocore.exceptions import ClientError

DEVICE_GRANT = "urn:ietf:params:oauth:grant-type:device_code"


def main() -> int:
    endpoint = sys.argv[1]
    session = botocore.session.get_session()
    models = {name: session.get_service_model(name) for name in ("sso-oidc", "sso")}
    facts = {"errors": {}, "routes": {}}
    for name, model in models.items():
        for shape_name in model.shape_names:
            shape = model.shape_for(shape_name)
            if shape.metadata.get("exception"):
                facts["errors"][shape_name] = shape.metadata.get("error", {}).get(
                    "httpStatusCode", 400
                )
    for name, op in [
        ("sso", "GetRoleCredentials"),
        ("sso-oidc", "RegisterClient"),
        ("sso-oidc", "StartDeviceAuthorization"),
        ("sso-oidc", "CreateToken"),
    ]:
        http = models[name].operation_model(op).http
        facts["routes"][op] = [http["method"], http["requestUri"]]
    token_member = models["sso"].operation_model("GetRoleCredentials").input_shape.members[
        "accessToken"
    ]
    facts["bearer_header"] = token_member.serialization.get("name")
    print(json.dumps(facts))

    config = Config(signature_version=UNSIGNED, retries={"total_max_attempts": 1})
    oidc = session.create_client(
        "sso-oidc", region_name="us-east-1", endpoint_url=endpoint, config=config
    )
    portal = session.create_client(
        "sso", region_name="us-east-1", endpoint_url=endpoint, config=config
    )

    def fields_in_model(service, op, answer):
        members = set(models[service].operation_model(op).output_shape.members)
        extra = set(answer) - members - {"ResponseMetadata"}
        if extra:
            raise AssertionError(f"{op} answered fields the model does not have: {sorted(extra)}")

    def expect_error(code, call, **kwargs):
        try:
            call(**kwargs)
        except ClientError as e:
            got = e.response["Error"]["Code"]
            status = e.response["ResponseMetadata"]["HTTPStatusCode"]
            if got != code:
                raise AssertionError(f"expected {code}, got {got}") from None
            if status != facts["errors"][code]:
                raise AssertionError(
                    f"{code} came with HTTP {status}; the model says {facts['errors'][code]}"
                ) from None
            return
        raise AssertionError(f"expected {code}, got a success")

    client = oidc.register_client(clientName="sso-model-check", clientType="public")
    fields_in_model("sso-oidc", "RegisterClient", client)
    cid, secret = client["clientId"], client["clientSecret"]
    expect_error(
        "InvalidClientException",
        oidc.start_device_authorization,
        clientId=cid,
        clientSecret="wrong",
        startUrl="https://acme.awsapps.com/start",
    )
    device = oidc.start_device_authorization(
        clientId=cid, clientSecret=secret, startUrl="https://acme.awsapps.com/start"
    )
    fields_in_model("sso-oidc", "StartDeviceAuthorization", device)
    poll = dict(
        clientId=cid, clientSecret=secret, grantType=DEVICE_GRANT, deviceCode=device["deviceCode"]
    )
    expect_error("SlowDownException", oidc.create_token, **poll)
    expect_error("AuthorizationPendingException", oidc.create_token, **poll)
    expect_error(
        "InvalidGrantException",
        oidc.create_token,
        clientId=cid,
        clientSecret=secret,
        grantType="refresh_token",
        refreshToken="not-a-refresh-token",
    )
    expect_error(
        "UnauthorizedException",
        portal.get_role_credentials,
        roleName="PowerUserAccess",
        accountId="123456789012",
        accessToken="not-an-access-token",
    )

    env = os.environ
    creds = portal.get_role_credentials(
        roleName="PowerUserAccess",
        accountId="123456789012",
        accessToken=env["SSO_CHECK_ACCESS_TOKEN"],
    )
    fields_in_model("sso", "GetRoleCredentials", creds)
    role = creds["roleCredentials"]
    members = set(
        models["sso"].shape_for("RoleCredentials").members
    )
    if set(role) - members or not isinstance(role["expiration"], int):
        raise AssertionError("roleCredentials does not match the model")
    token = oidc.create_token(
        clientId=env["SSO_CHECK_CLIENT_ID"],
        clientSecret=env["SSO_CHECK_CLIENT_SECRET"],
        grantType="refresh_token",
        refreshToken=env["SSO_CHECK_REFRESH_TOKEN"],
    )
    fields_in_model("sso-oidc", "CreateToken", token)
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except AssertionError as e:
        print(f"the fake disagrees with botocore's model: {e}", file=sys.stderr)
        sys.exit(1)
