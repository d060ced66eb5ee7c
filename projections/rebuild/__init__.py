"""The rebuild's pure side: the plan (units, cost, time), replaying the log into rows, and the
comparison of rebuilt rows with live ones."""
