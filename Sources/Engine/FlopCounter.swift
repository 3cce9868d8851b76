/// Counts the multiply-add FLOPs of the matrix ops (linear, convolution) in forward passes:
/// 2 * M * N * K each. Benchmarks report training GFLOP/s as 3x the forward count per sample
/// (forward + two backward GEMMs), the convention PyTorch comparisons use.
public enum FlopCounter {
    nonisolated(unsafe) public static var forwardFLOPs: Int = 0
    public static func reset() { forwardFLOPs = 0 }
}
