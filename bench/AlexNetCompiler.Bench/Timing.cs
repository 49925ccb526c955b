using System.Diagnostics;
using System.Globalization;

namespace AlexNetCompiler.Bench;

/// <summary>Min, median and max of repeated timings, in seconds.</summary>
internal readonly record struct TimingSummary(double Min, double Median, double Max)
{
    public static TimingSummary Of(IReadOnlyList<double> seconds)
    {
        if (seconds.Count == 0) throw new ArgumentException("No timings.", nameof(seconds));
        double[] sorted = [.. seconds];
        Array.Sort(sorted);
        int n = sorted.Length;
        double median = n % 2 == 1 ? sorted[n / 2] : 0.5 * (sorted[n / 2 - 1] + sorted[n / 2]);
        return new TimingSummary(sorted[0], median, sorted[^1]);
    }
}

/// <summary>
/// How a timed action is warmed and measured. Warming lasts at least <see cref="MinWarmupTime"/> (the runtime promotes
/// hot methods to optimised code in the background some time after their first calls, so an early run of similar
/// times can still be followed by faster ones) and ends when the last <see cref="StableWindow"/> calls agree within
/// <see cref="StableSpread"/> (max/min - 1) — JIT tiers, scratch growth, a library's first-call allocations and the
/// caches have settled — or at the caps, which the result reports as not stable.
/// </summary>
internal static class Timing
{
    public const int StableWindow = 5;
    public const double StableSpread = 0.05;
    public const int MinWarmups = 3;
    public const int MaxWarmups = 400; // samples
    public static readonly TimeSpan MinWarmupTime = TimeSpan.FromSeconds(3);
    public static readonly TimeSpan MaxWarmupTime = TimeSpan.FromSeconds(60);

    public sealed record Result(int Warmups, bool Stable, double[] Seconds);

    /// <summary>The shortest sample: calls shorter than this are timed in runs of several, and the time divided.</summary>
    public static readonly TimeSpan MinSampleTime = TimeSpan.FromMilliseconds(20);

    public static Result WarmThenTime(int repetitions, Action action)
    {
        var total = Stopwatch.StartNew();
        double first = TimeOnce(action, 1);
        int callsPerSample = (int)Math.Clamp(Math.Ceiling(MinSampleTime.TotalSeconds / Math.Max(first, 1e-7)), 1, 10_000);
        var warm = new List<double>();
        bool stable = false;
        while (warm.Count < MaxWarmups && total.Elapsed < MaxWarmupTime)
        {
            double perCall = TimeOnce(action, callsPerSample);
            if (perCall * callsPerSample < MinSampleTime.TotalSeconds / 2)
            {
                // The first call (JIT, first allocations) overstated a call's time: size the samples again and
                // start the stability test over.
                callsPerSample = (int)Math.Clamp(Math.Ceiling(MinSampleTime.TotalSeconds / Math.Max(perCall, 1e-7)), 1, 10_000);
                warm.Clear();
                continue;
            }
            warm.Add(perCall);
            if (warm.Count >= Math.Max(MinWarmups, StableWindow) && total.Elapsed >= MinWarmupTime
                && Spread(warm.TakeLast(StableWindow)) <= StableSpread)
            {
                stable = true;
                break;
            }
        }
        var seconds = new double[repetitions];
        for (int i = 0; i < repetitions; i++) seconds[i] = TimeOnce(action, callsPerSample);
        return new Result(warm.Count, stable, seconds);
    }

    /// <summary>Seconds per call, over a run of calls.</summary>
    internal static double TimeOnce(Action action, int calls)
    {
        long start = Stopwatch.GetTimestamp();
        for (int i = 0; i < calls; i++) action();
        return Stopwatch.GetElapsedTime(start).TotalSeconds / calls;
    }

    private static double Spread(IEnumerable<double> times)
    {
        double min = times.Min(), max = times.Max();
        return max / min - 1;
    }

    public static string Format(double value) => value.ToString("R", CultureInfo.InvariantCulture);
}
