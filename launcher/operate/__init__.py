"""Runs seen from any machine, after launch: what runs and what it left (:mod:`.runs`), its
logs (:mod:`.runlogs`), teardown and gc (:mod:`.cleanup`), kept cache volumes
(:mod:`.keptvolumes`), shell access (:mod:`.access`, :mod:`.access_ssh`) and the account and
setup checks of ``doctor`` (:mod:`.doctor`, :mod:`.selfdestruct`)."""
