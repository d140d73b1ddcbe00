"""TensorBoard peer: what TensorBoard's own EventAccumulator reads from event
files (the loader behind TensorBoard's scalar dashboard).

Request: {"logdirs": [dir]}
Response: {"runs": {dir: {"tags": {kind: [tags]}, "scalars": {tag: [[step, value, wall_time]]},
                          "files": [event file names]}}}
"""
import os

from tensorboard.backend.event_processing import event_accumulator as ea

from peer_io import main


def read(logdir):
    acc = ea.EventAccumulator(logdir, size_guidance={ea.SCALARS: 0, ea.TENSORS: 0, ea.HISTOGRAMS: 0, ea.IMAGES: 0})
    acc.Reload()
    tags = acc.Tags()
    scalars = {tag: [[e.step, e.value, e.wall_time] for e in acc.Scalars(tag)] for tag in tags.get("scalars", [])}
    return {"tags": {k: v if isinstance(v, list) else bool(v) for k, v in tags.items()}, "scalars": scalars,
            "files": sorted(f for f in os.listdir(logdir) if "tfevents" in f)}


def handle(req, work):
    return {"runs": {d: read(d) for d in req["logdirs"]}}


if __name__ == "__main__":
    main(handle)
