#!/usr/bin/env bash
# Turn on Fleet Indexing of the gghealth named shadow, keeping what the account already indexes.
#
# CloudFormation has no resource for the indexing configuration, and the configuration is one
# per account and Region: UpdateIndexingConfiguration REPLACES customFields and the named-shadow
# filter. So this script reads the current configuration and merges into it: named shadow
# indexing ON, "gghealth" added to filter.namedShadowNames, the custom fields that aggregations
# and fleet metrics need added to customFields; the rest (connectivity, Device Defender, other
# shadows, geolocations, other fields) is kept as it is.
# https://docs.aws.amazon.com/iot/latest/developerguide/managing-index.html
#
# Usage: enable-fleet-indexing.sh [--dry-run] [--shadow-name NAME]
# Needs the AWS CLI and jq; the usual AWS_PROFILE / AWS_REGION / AWS_ENDPOINT_URL apply.
set -euo pipefail

shadow="gghealth"
dry_run=0
while [ $# -gt 0 ]; do
  case "$1" in
    --dry-run) dry_run=1 ;;
    --shadow-name)
      [ $# -ge 2 ] || { echo "--shadow-name needs a value" >&2; exit 2; }
      shadow="$2"
      shift
      ;;
    -h | --help) sed -n '2,14p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "unknown argument: $1 (see --help)" >&2; exit 2 ;;
  esac
  shift
done
# Shadow names: https://docs.aws.amazon.com/iot/latest/developerguide/iot-device-shadows.html
if ! [[ "$shadow" =~ ^[a-zA-Z0-9:_-]{1,64}$ ]]; then
  echo "invalid shadow name: $shadow" >&2
  exit 2
fi
for tool in aws jq; do
  command -v "$tool" >/dev/null || { echo "$tool is required" >&2; exit 2; }
done

current="$(aws iot get-indexing-configuration --output json)"

# thingIndexingMode REGISTRY_AND_SHADOW with namedShadowIndexingMode ON is the combination AWS
# documents for named shadows. managedFields are read-only and must not be sent back.
merged="$(jq --arg s "$shadow" '
  (.thingIndexingConfiguration // {}) as $t
  | ($t.customFields // []) as $have
  | "shadow.name.\($s).reported" as $p
  | [
      {name: "\($p).status", type: "String"},
      {name: "\($p).device_cert_days_left", type: "Number"},
      {name: "\($p).counts.CRITICAL", type: "Number"},
      {name: "\($p).counts.WARNING", type: "Number"},
      {name: "\($p).counts.UNKNOWN", type: "Number"},
      {name: "\($p).critical_checks", type: "String"},
      {name: "\($p).agent_version", type: "String"}
    ] as $ours
  | ($have | map(.name)) as $names
  | {thingIndexingConfiguration: (
      ($t | del(.managedFields))
      + {
          thingIndexingMode: "REGISTRY_AND_SHADOW",
          namedShadowIndexingMode: "ON",
          filter: (($t.filter // {})
            + {namedShadowNames: ((($t.filter // {}).namedShadowNames // []) + [$s] | unique)}),
          customFields: ($have + [$ours[] | select(.name as $n | $names | index($n) | not)])
        }
    )}
' <<<"$current")"

# A field we need that exists with another type is kept as it is; say so, it breaks aggregation.
jq -r --arg s "$shadow" '
  .thingIndexingConfiguration.customFields[]?
  | select(.name == "shadow.name.\($s).reported.status" and .type != "String"
        or .name == "shadow.name.\($s).reported.device_cert_days_left" and .type != "Number")
  | "warning: custom field \(.name) is indexed as \(.type); aggregations on it will not work"
' <<<"$current" >&2

echo "$merged"
if [ "$dry_run" = 1 ]; then
  echo "dry run: nothing changed" >&2
  exit 0
fi
aws iot update-indexing-configuration --cli-input-json "$merged"
echo "Fleet Indexing now covers the '$shadow' named shadow; the index rebuilds for a while:" >&2
echo "  aws iot describe-index --index-name AWS_Things" >&2
