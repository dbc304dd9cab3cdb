"""A composed job config: its checks (`checks`) and what identifies the job (`identity`)."""
