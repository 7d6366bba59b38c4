"""Fleet view: the gghealth named shadow, fleet-summary, the CloudFormation template."""
