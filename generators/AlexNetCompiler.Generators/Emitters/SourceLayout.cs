using System.Collections.Generic;
using System.Text;

namespace AlexNetCompiler.Generators.Emitters;

/// <summary>
/// Keeps generated lines under <see cref="MaxLineLength"/> characters, as a person would write them: long comments
/// continue on further comment lines, long parameter lists continue indented, long string literals are joined with +.
/// </summary>
internal static class SourceLayout
{
    public const int MaxLineLength = 120;

    /// <summary>Wraps the long "// ..." comments and long function signatures of C-family source, line by line.</summary>
    public static string Wrap(string source)
    {
        var result = new StringBuilder(source.Length + source.Length / 16);
        string[] lines = source.Split('\n');
        for (int i = 0; i < lines.Length; i++)
        {
            string line = lines[i];
            if (line.Length <= MaxLineLength) result.Append(line);
            else if (line.TrimStart().StartsWith("//", System.StringComparison.Ordinal)) WrapComment(result, line);
            else if (line.IndexOf('(') > 0 && line.EndsWith(")", System.StringComparison.Ordinal)) WrapParameters(result, line);
            else result.Append(line);
            if (i < lines.Length - 1) result.Append('\n');
        }
        return result.ToString();
    }

    private static void WrapComment(StringBuilder result, string line)
    {
        int indent = line.Length - line.TrimStart().Length;
        string prefix = line.Substring(0, indent) + "// ";
        string text = line.TrimStart().Substring(2).TrimStart();
        AppendWords(result, text.Split(' '), prefix, prefix, MaxLineLength);
    }

    // "f(a, b, c)" -> "f(" then the parameters, packed, on lines indented four more, closing on the last one.
    private static void WrapParameters(StringBuilder result, string line)
    {
        int open = OpeningParenthesisOfLast(line);
        int indent = line.Length - line.TrimStart().Length;
        string continuation = new string(' ', indent + 4);
        result.Append(line, 0, open + 1).Append('\n');
        string[] parameters = line.Substring(open + 1, line.Length - open - 2).Split(new[] { ", " }, System.StringSplitOptions.None);
        var current = new StringBuilder(continuation);
        for (int p = 0; p < parameters.Length; p++)
        {
            string piece = parameters[p] + (p < parameters.Length - 1 ? "," : ")");
            if (current.Length > continuation.Length && current.Length + 1 + piece.Length > MaxLineLength)
            {
                result.Append(current.ToString()).Append('\n');
                current.Clear().Append(continuation);
            }
            if (current.Length > continuation.Length) current.Append(' ');
            current.Append(piece);
        }
        result.Append(current.ToString());
    }

    // The '(' that the line's final ')' closes: in "void __launch_bounds__(N) f(a, b)" the one after f.
    private static int OpeningParenthesisOfLast(string line)
    {
        int depth = 0;
        for (int i = line.Length - 1; i >= 0; i--)
        {
            if (line[i] == ')') depth++;
            else if (line[i] == '(' && --depth == 0) return i;
        }
        return line.IndexOf('(');
    }

    /// <summary>
    /// A C# string literal for <paramref name="text"/> that starts at <paramref name="column"/>; when it would not fit
    /// it is split at spaces into literals joined by " +" on lines indented to <paramref name="continuationIndent"/>.
    /// </summary>
    public static string WrappedLiteral(string text, int column, int continuationIndent)
    {
        if (column + ModelEmitter.Literal(text).Length + 2 <= MaxLineLength) return ModelEmitter.Literal(text);
        var pieces = new List<string>();
        var current = new StringBuilder();
        int width = MaxLineLength - column - 5; // room for the quotes, the space kept at the break and " +"
        foreach (string word in text.Split(' '))
        {
            string next = current.Length == 0 ? word : " " + word;
            if (current.Length > 0 && current.Length + next.Length > width)
            {
                pieces.Add(current.ToString() + " ");
                current.Clear();
                width = MaxLineLength - continuationIndent - 5;
                next = word;
            }
            current.Append(next);
        }
        pieces.Add(current.ToString());
        var result = new StringBuilder();
        for (int i = 0; i < pieces.Count; i++)
        {
            if (i > 0) result.Append(" +\n").Append(' ', continuationIndent);
            result.Append(ModelEmitter.Literal(pieces[i]));
        }
        return result.ToString();
    }

    private static void AppendWords(StringBuilder result, string[] words, string firstPrefix, string prefix, int limit)
    {
        var current = new StringBuilder(firstPrefix);
        int start = current.Length;
        foreach (string word in words)
        {
            if (current.Length > start && current.Length + 1 + word.Length > limit)
            {
                result.Append(current.ToString().TrimEnd()).Append('\n');
                current.Clear().Append(prefix);
                start = current.Length;
            }
            if (current.Length > start) current.Append(' ');
            current.Append(word);
        }
        result.Append(current.ToString().TrimEnd());
    }

}
