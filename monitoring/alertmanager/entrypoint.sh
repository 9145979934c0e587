#!/bin/sh
# Renders Alertmanager's configuration from the environment, then runs Alertmanager with the
# arguments given. One setting is enough to be notified:
#   ALERT_WEBHOOK_URL         a generic webhook (Alertmanager's JSON)
#   ALERT_SLACK_WEBHOOK_URL   a Slack incoming webhook (ALERT_SLACK_CHANNEL, default #costs)
#   ALERT_EMAIL_TO            an address, with ALERT_SMTP_SMARTHOST (host:port), ALERT_SMTP_FROM,
#                             and ALERT_SMTP_USERNAME / ALERT_SMTP_PASSWORD when the server asks
# Secrets can come from files instead: ALERT_WEBHOOK_URL_FILE, ALERT_SLACK_WEBHOOK_URL_FILE,
# ALERT_SMTP_PASSWORD_FILE (Docker and Kubernetes secrets). ALERT_GROUP_WAIT overrides the
# route's group_wait. The template is ALERTMANAGER_TEMPLATE (the shipped alertmanager.yml), the
# rendered file ALERTMANAGER_CONFIG (mode 600), the binary ALERTMANAGER_BIN.
set -eu

template=${ALERTMANAGER_TEMPLATE:-/etc/alertmanager/alertmanager.yml}
config=${ALERTMANAGER_CONFIG:-/alertmanager/config.yml}
bin=${ALERTMANAGER_BIN:-/bin/alertmanager}

# The value of variable $1, or the content of the file its _FILE variant names.
secret() {
    eval "value=\${$1:-}"
    eval "file=\${$1_FILE:-}"
    if [ -z "$value" ] && [ -n "$file" ]; then
        value=$(cat "$file")
    fi
    printf '%s' "$value"
}

# A YAML single-quoted scalar.
quote() {
    printf "'%s'" "$(printf '%s' "$1" | sed "s/'/''/g")"
}

umask 077
cp "$template" "$config"
if [ -n "${ALERT_GROUP_WAIT:-}" ]; then
    sed -i "s/^  group_wait: .*/  group_wait: ${ALERT_GROUP_WAIT}/" "$config"
fi

sent_to=""
webhook=$(secret ALERT_WEBHOOK_URL)
if [ -n "$webhook" ]; then
    printf '    webhook_configs:\n      - url: %s\n        send_resolved: true\n' \
        "$(quote "$webhook")" >> "$config"
    sent_to="$sent_to webhook"
fi
slack=$(secret ALERT_SLACK_WEBHOOK_URL)
if [ -n "$slack" ]; then
    {
        printf '    slack_configs:\n      - api_url: %s\n' "$(quote "$slack")"
        printf '        channel: %s\n' "$(quote "${ALERT_SLACK_CHANNEL:-#costs}")"
        printf '        send_resolved: true\n'
        printf '        title: %s\n' "'{{ .CommonAnnotations.summary }}'"
        printf '        text: %s\n' "'{{ .CommonAnnotations.description }} {{ .CommonAnnotations.runbook_url }}'"
    } >> "$config"
    sent_to="$sent_to slack"
fi
if [ -n "${ALERT_EMAIL_TO:-}" ]; then
    : "${ALERT_SMTP_SMARTHOST:?ALERT_EMAIL_TO needs ALERT_SMTP_SMARTHOST (host:port)}"
    : "${ALERT_SMTP_FROM:?ALERT_EMAIL_TO needs ALERT_SMTP_FROM}"
    {
        printf '    email_configs:\n      - to: %s\n' "$(quote "$ALERT_EMAIL_TO")"
        printf '        from: %s\n' "$(quote "$ALERT_SMTP_FROM")"
        printf '        smarthost: %s\n' "$(quote "$ALERT_SMTP_SMARTHOST")"
        printf '        send_resolved: true\n'
        if [ -n "${ALERT_SMTP_USERNAME:-}" ]; then
            printf '        auth_username: %s\n' "$(quote "$ALERT_SMTP_USERNAME")"
            printf '        auth_password: %s\n' "$(quote "$(secret ALERT_SMTP_PASSWORD)")"
        fi
    } >> "$config"
    sent_to="$sent_to email"
fi
if [ -z "$sent_to" ]; then
    echo "entrypoint: no ALERT_WEBHOOK_URL, ALERT_SLACK_WEBHOOK_URL or ALERT_EMAIL_TO: alerts are listed in Alertmanager but sent nowhere" >&2
else
    echo "entrypoint: notifications go to:$sent_to" >&2
fi
exec "$bin" --config.file="$config" "$@"
