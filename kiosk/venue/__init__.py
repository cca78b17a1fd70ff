"""The venue link: the gates of one venue share their journalled events over an MQTT broker.

An adapter like the upstream (docs/venue.md): it publishes what this gate journalled, keeps the
peers' events in its own store and reports who is online. It never decides and never admits:
peers' events only ever add to the counts the rules read.
"""
