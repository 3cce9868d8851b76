public enum ClusterModule {}
