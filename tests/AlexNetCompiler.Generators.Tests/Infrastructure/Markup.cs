using Microsoft.CodeAnalysis.Text;

namespace AlexNetCompiler.Generators.Tests.Infrastructure;

/// <summary>
/// Test sources mark the expected diagnostic location with [| and |] (the convention of Roslyn's analyzer
/// testing libraries). Parse returns the source without the markers and the marked span.
/// </summary>
internal static class Markup
{
    public static (string Source, TextSpan Span) Parse(string markup)
    {
        int start = markup.IndexOf("[|", StringComparison.Ordinal);
        int end = markup.IndexOf("|]", StringComparison.Ordinal);
        if (start < 0 || end < start) throw new ArgumentException("The test source needs one [|marked|] span.");
        string source = markup.Remove(end, 2).Remove(start, 2);
        return (source, TextSpan.FromBounds(start, end - 2));
    }
}
