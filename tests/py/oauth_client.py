"""Drive keymint's /oauth/token with requests-oauthlib, a client library keymint did not write.

usage: oauth_client.py TOKEN_URL CLIENT_ID CLIENT_SECRET USERNAME PASSWORD
Prints JSON: the client_credentials token, the password-grant token and the refreshed token.
"""
import json
import os
import sys

# Loopback test server over plain HTTP; oauthlib refuses http:// otherwise.
os.environ["OAUTHLIB_INSECURE_TRANSPORT"] = "1"

from oauthlib.oauth2 import BackendApplicationClient, LegacyApplicationClient
from requests.auth import HTTPBasicAuth
from requests_oauthlib import OAuth2Session

token_url, client_id, client_secret, username, password = sys.argv[1:6]
auth = HTTPBasicAuth(client_id, client_secret)

cc = OAuth2Session(client=BackendApplicationClient(client_id=client_id)).fetch_token(
    token_url=token_url, auth=auth, scope=["billing:read"]
)

session = OAuth2Session(client=LegacyApplicationClient(client_id=client_id))
pw = session.fetch_token(token_url=token_url, username=username, password=password, auth=auth)
refreshed = session.refresh_token(token_url, refresh_token=pw["refresh_token"], auth=auth)

print(json.dumps({"client_credentials": cc, "password": pw, "refreshed": refreshed}))
