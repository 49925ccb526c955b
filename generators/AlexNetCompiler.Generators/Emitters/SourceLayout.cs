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
        List<string> lines = WrapWords(text, MaxLineLength - prefix.Length);
        for (int i = 0; i < lines.Count; i++)
        {
            if (i > 0) result.Append('\n');
            result.Append((prefix + lines[i]).TrimEnd());
        }
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
    /// it is split at spaces (inside a word only where the word alone is too long) into literals joined by " +" on
    /// lines indented to <paramref name="continuationIndent"/>. The pieces concatenate to exactly the text.
    /// </summary>
    public static string WrappedLiteral(string text, int column, int continuationIndent)
    {
        if (column + ModelEmitter.Literal(text).Length + 2 <= MaxLineLength) return ModelEmitter.Literal(text);
        // Room for the quotes, the space kept at the break and " +".
        List<(string Text, bool AtSpace)> pieces = Wrap(text, MaxLineLength - column - 5, MaxLineLength - continuationIndent - 5,
            piece => ModelEmitter.Literal(piece).Length - 2, xml: false);
        var result = new StringBuilder();
        for (int i = 0; i < pieces.Count; i++)
        {
            if (i > 0) result.Append(" +\n").Append(' ', continuationIndent);
            result.Append(ModelEmitter.Literal(pieces[i].AtSpace ? pieces[i].Text + " " : pieces[i].Text));
        }
        return result.ToString();
    }

    /// <summary>
    /// Comment text as lines of at most <paramref name="width"/> characters, broken at spaces; a word longer than a
    /// line is cut, where <paramref name="xml"/> never inside a tag or an entity.
    /// </summary>
    public static List<string> WrapWords(string text, int width, bool xml = false)
    {
        var lines = new List<string>();
        foreach ((string line, bool _) in Wrap(text, width, width, piece => piece.Length, xml)) lines.Add(line.TrimEnd());
        return lines;
    }

    // Greedy: as many words on a line as fit (the space between two lines is dropped, AtSpace says it was there);
    // a word longer than a whole line is cut where it reaches the end of the line.
    private static List<(string Text, bool AtSpace)> Wrap(string text, int firstWidth, int width, System.Func<string, int> measure, bool xml)
    {
        var lines = new List<(string Text, bool AtSpace)>();
        var current = new StringBuilder();
        int limit = firstWidth;
        bool empty = true;
        foreach (string word in text.Split(' '))
        {
            if (!empty && measure(current + " " + word) > limit)
            {
                lines.Add((current.ToString(), true));
                current.Clear();
                limit = width;
                empty = true;
            }
            if (!empty) current.Append(' ');
            current.Append(word);
            empty = false;
            while (measure(current.ToString()) > limit)
            {
                int cut = CutPoint(current.ToString(), limit, measure, xml);
                if (cut == 0) break;
                lines.Add((current.ToString(0, cut), false));
                current.Remove(0, cut);
                limit = width;
            }
        }
        lines.Add((current.ToString(), false));
        return lines;
    }

    // The longest start of text that fits, not ending between the halves of a surrogate pair nor, in XML, inside a
    // tag or an entity; 0 where none does.
    private static int CutPoint(string text, int limit, System.Func<string, int> measure, bool xml)
    {
        int cut = 0;
        while (cut < text.Length && measure(text.Substring(0, cut + 1)) <= limit) cut++;
        if (cut > 0 && cut < text.Length && char.IsHighSurrogate(text[cut - 1])) cut--;
        if (xml)
        {
            string start = text.Substring(0, cut);
            int tag = start.LastIndexOf('<'), entity = start.LastIndexOf('&');
            if (tag > start.LastIndexOf('>')) cut = tag;
            if (entity > start.LastIndexOf(';') && entity < cut) cut = entity;
        }
        return cut;
    }
}
