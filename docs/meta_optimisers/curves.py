"""Validation score against wall-clock minutes for the comparison's runs."""
import glob, json, os, sys
import numpy as np
import tensorflow as tf
import matplotlib
matplotlib.use("Agg")
import matplotlib.pyplot as plt

def scores(tb_dir):
  pts = []
  for path in glob.glob(os.path.join(tb_dir, "events.out.tfevents.*")):
    try:
      for record in tf.data.TFRecordDataset(path):
        e = tf.compat.v1.Event.FromString(record.numpy())
        for v in e.summary.value:
          if v.tag == "validation/score":
            pts.append((e.wall_time, e.step, float(tf.make_ndarray(v.tensor))))
    except tf.errors.DataLossError:
      pass
  return sorted(pts)

def log_start(log):
  # The process start: the first line's time stamp.
  import datetime
  for line in open(log):
    if line[:1] == "I" and line[1:5].isdigit():
      t = line.split()[1]
      d = datetime.datetime.strptime("2026" + line[1:5] + " " + t, "%Y%m%d %H:%M:%S.%f")
      return d.replace(tzinfo=datetime.timezone.utc).timestamp()

root = sys.argv[1]
out = {}
fig, ax = plt.subplots(figsize=(7, 4.5))
for arm in ("gradient", "es", "hybrid"):
  d = os.path.join(root, f"{arm}_s0")
  if not os.path.isdir(d): continue
  t0 = log_start(d + ".log")
  pts = scores(os.path.join(d, "tb"))
  out[arm] = [((w - t0) / 60, s, v) for w, s, v in pts]
  ax.plot([p[0] for p in out[arm]], [p[2] for p in out[arm]], "o-", label=arm)
pbt = os.path.join(root, "pbt_s0")
if os.path.isdir(pbt):
  t0 = os.path.getmtime(os.path.join(pbt, "pbt.json"))
  members = sorted(glob.glob(os.path.join(pbt, "members", "*")))
  allpts = []
  for m in members:
    pts = scores(os.path.join(m, "tb"))
    allpts += [((w - t0) / 60, s, v, os.path.basename(m)) for w, s, v in pts]
    ax.plot([(w - t0) / 60 for w, _, _ in pts], [v for _, _, v in pts], ".", color="grey", alpha=0.5)
  allpts.sort()
  out["pbt_members"] = allpts
  best, t, b = -1e9, [], []
  for p in allpts:
    best = max(best, p[2]); t.append(p[0]); b.append(best)
  ax.plot(t, b, "s-", color="black", label="PBT (best member so far; grey: members)")
ax.axhline(1.0, ls="--", color="red", lw=1, label="A2C at its default rate (score 1)")
ax.set_xlabel("wall-clock minutes since launch"); ax.set_ylabel("validation score (held-out instances; random 0, A2C 1)")
ax.legend(fontsize=8); ax.grid(alpha=0.3)
fig.tight_layout(); fig.savefig(sys.argv[2], dpi=110)
json.dump(out, open(sys.argv[2][:-4] + ".json", "w"), indent=1)
for k, v in out.items():
  print(k, [(round(a, 1), s, round(x, 3)) for a, s, x, *_ in v][-6:])
