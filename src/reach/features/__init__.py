"""Content features of Web Appendix E (text, image, audio, editing) and the post statistics of Web Appendix A.

Every loader of a pretrained model takes an explicit local path (nothing downloads); `store` holds the per-shard
array files and their concatenation back into the ingested video order."""
