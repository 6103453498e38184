"""``beacon-gateway demo``: the whole system on one machine, as a subscriber sees it.

A private mosquitto on a free loopback port (:mod:`.broker`), the real gateway as a child
process playing a simulator scene in real time (:mod:`.gateway_child`, the same ``beacon-gateway
run`` as on hardware), a subscriber that prints each event as it arrives (:mod:`.watch`,
:mod:`.lines`), and at the end a summary scored against the scene's ground truth
(:mod:`.reference`, :mod:`.summary`). :mod:`.session` runs them and stops them all;
:mod:`.command` is the command line.
"""
