"""The data layer: from a dataset name to batches of frames.

  synthetic.py   ``vssl synth``: a seeded action dataset written as real .avi files in UCF101's layout
  video.py       decoding: ``open_video(path, decoder) -> VideoHandle`` (PyAV, torchcodec, frame folders)
  index.py       ``build_index(name, split, subset) -> VideoIndex`` with an on-disk index cache
  formats/      one module per dataset layout (UCF101, HMDB51, Kinetics-400, class-per-folder), registered
  samplers.py    registered samplers: what a method draws from one video (frame pairs, clips, tuples, ...)
  transforms.py  torchvision.transforms.v2 augmentations, shared across a clip or independent per frame
  loader.py      ``SampledVideos``: index x sampler -> a Dataset with exact, seed-determined samples

Frames are always uint8 tensors shaped [T, C, H, W] out of the decoder and
float tensors [T, C, H, W] (normalised) out of the transforms.
"""
