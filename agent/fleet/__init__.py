"""The fleet view: the ``gghealth`` named-shadow summary each device publishes (``shadow``) and
``gg-health-agent fleet-summary`` over the reports AWS keeps (``summary``)."""
