#!/bin/bash
# SageMaker notebook instance lifecycle configuration ("Start notebook" script) that keeps
# temporary credentials fresh in ~ec2-user/.aws/credentials with credfresh.
#
# Two profiles, for tools that only read the credentials file (or need a named profile):
#   [notebook]   the notebook's execution role, from the instance metadata service (IMDSv2),
#                kind = "instance"
#   [team-data]  a narrower role assumed from it, kind = "assume_role"; drop it if unneeded
#
# Use: AWS_PROFILE=team-data python train.py, or profile_name="team-data" in boto3.
#
# Setup:
#   1. Upload a Linux x86_64 credfresh binary (`cargo build --release`, or the .deb's binary)
#      to S3 and set CREDFRESH_BINARY_S3 below; the execution role needs s3:GetObject on it.
#      (`credfresh check` also needs credfresh-check beside the binary; the daemon does not.)
#   2. Set TEAM_ROLE_ARN (its trust policy must allow the execution role) or remove that profile.
#      The region (the daemon's STS calls use it) is the instance's, from the instance metadata
#      service; set AWS_REGION below to choose another. When neither gives one, the script stops
#      before installing anything, with the reason in the lifecycle log, rather than start a
#      daemon with an empty AWS_REGION.
#   3. SageMaker console > Lifecycle configurations > Notebook instance > Start notebook: paste
#      this script; attach the configuration to the notebook instance.
# Lifecycle scripts run as root and must finish within 5 minutes; credfresh runs on as a
# systemd service (as ec2-user), restarted if it stops. Logs: journalctl -u credfresh.
set -euo pipefail

CREDFRESH_BINARY_S3="${CREDFRESH_BINARY_S3:-s3://my-bucket/tools/credfresh-x86_64-linux}"
TEAM_ROLE_ARN="${TEAM_ROLE_ARN:-arn:aws:iam::123456789012:role/TeamDataAccess}"
AWS_REGION="${AWS_REGION:-}"
NOTEBOOK_USER=ec2-user
USER_HOME=/home/$NOTEBOOK_USER
# /home/ec2-user/SageMaker survives restarts; the rest of the home directory does not.
INSTALL_DIR=$USER_HOME/SageMaker/.credfresh
CONFIG=$USER_HOME/.config/credfresh/config.toml

# --- region ---
# Looked up here, not inside the unit's here-document below: a failing command substitution
# there would not stop the script (set -e does not see it) and the unit would get AWS_REGION=.
REGION=$AWS_REGION
if [[ -z $REGION ]]; then
    IMDS=http://169.254.169.254/latest
    if IMDS_TOKEN=$(curl -fsS --max-time 5 --retry 3 -X PUT -H 'x-aws-ec2-metadata-token-ttl-seconds: 60' "$IMDS/api/token"); then
        REGION=$(curl -fsS --max-time 5 --retry 3 -H "x-aws-ec2-metadata-token: $IMDS_TOKEN" "$IMDS/meta-data/placement/region") || REGION=
    fi
fi
if [[ ! $REGION =~ ^[a-z0-9-]+$ ]]; then
    echo "on-start.sh: cannot tell this instance's region (the instance metadata service gave none): set AWS_REGION at the top of this script" >&2
    exit 1
fi
# --- end region ---

install -d -o "$NOTEBOOK_USER" -g "$NOTEBOOK_USER" -m 0755 "$INSTALL_DIR"
if [[ ! -x $INSTALL_DIR/credfresh ]]; then
    aws s3 cp --only-show-errors "$CREDFRESH_BINARY_S3" "$INSTALL_DIR/credfresh.tmp"
    chmod 0755 "$INSTALL_DIR/credfresh.tmp"
    mv -f "$INSTALL_DIR/credfresh.tmp" "$INSTALL_DIR/credfresh"
fi
ln -sf "$INSTALL_DIR/credfresh" /usr/local/bin/credfresh

install -d -o "$NOTEBOOK_USER" -g "$NOTEBOOK_USER" -m 0700 "$USER_HOME/.config" "$USER_HOME/.config/credfresh" "$USER_HOME/.aws"
cat >"$CONFIG" <<TOML
[daemon]
credentials_file = "$USER_HOME/.aws/credentials"
refresh_before = "15m"

# The notebook's execution role (IMDSv2 on a notebook instance; the container endpoint
# where AWS_CONTAINER_CREDENTIALS_RELATIVE_URI is set).
[[profile]]
name = "notebook"
kind = "instance"

# A narrower role assumed from the execution role.
[[profile]]
name = "team-data"
kind = "assume_role"
role_arn = "$TEAM_ROLE_ARN"
source_profile = "notebook"
duration = "1h"
TOML
chown "$NOTEBOOK_USER:$NOTEBOOK_USER" "$CONFIG"
chmod 0600 "$CONFIG"

# Refuse a broken config now, with its reason in the lifecycle log (CloudWatch).
sudo -u "$NOTEBOOK_USER" -H /usr/local/bin/credfresh --config "$CONFIG" validate

cat >/etc/systemd/system/credfresh.service <<UNIT
[Unit]
Description=credfresh: keeps temporary AWS credentials fresh in $USER_HOME/.aws/credentials
After=network-online.target
Wants=network-online.target

[Service]
Type=notify
NotifyAccess=main
User=$NOTEBOOK_USER
Environment=HOME=$USER_HOME
Environment=AWS_REGION=$REGION
ExecStart=/usr/local/bin/credfresh --config $CONFIG daemon
ExecReload=/bin/kill -HUP \$MAINPID
Restart=on-failure
RestartSec=5
# Exit 2 is a config error (credfresh validate says what to change): not retried in a loop.
RestartPreventExitStatus=2
WatchdogSec=90s

[Install]
WantedBy=multi-user.target
UNIT
systemctl daemon-reload
systemctl enable credfresh
systemctl restart credfresh

# Return once every profile's credentials are in the file, so notebooks started right away
# find them (the whole script must finish within 5 minutes). When they are not there in time,
# `wait` names each missing profile with its state and error (in the lifecycle log), and the
# notebook starts anyway: credfresh keeps trying.
if ! sudo -u "$NOTEBOOK_USER" -H /usr/local/bin/credfresh --config "$CONFIG" wait --timeout 2m; then
    sudo -u "$NOTEBOOK_USER" -H /usr/local/bin/credfresh --config "$CONFIG" status || true
fi
