"""Is everything caught up and healthy? The pure side of `dynafold status` (issue 19 §A4).

``metrics``: metric series as CloudWatch answers them (one statistic per period), bucketed the
same way from the EMF lines the functions print locally. ``alarms``: one template alarm evaluated
over such a series. ``status``: the summary in words (readers' lag, failures and dead letters,
alarms, view versions, rebuilds) and whether something needs attention. Nothing here reads
anything: the adapters read, the service (processors/services/status.py) hands their readings here.
"""
