"""Media decoding for the feature stage: key frames (and the per-frame statistics the editing features need) and
16 kHz mono waveforms, with a per-video status instead of a crash or a silent zero vector."""
