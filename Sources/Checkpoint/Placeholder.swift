public enum CheckpointModule {}
