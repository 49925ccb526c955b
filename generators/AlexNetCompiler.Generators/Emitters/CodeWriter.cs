using System.Collections.Generic;
using System.Text;

namespace AlexNetCompiler.Generators.Emitters;

/// <summary>
/// The one writer of generated C#: four spaces per level, "\n" line endings on every platform (a generated file is
/// the same bytes wherever it is built), blank lines without trailing whitespace, and lines kept within
/// <see cref="SourceLayout.MaxLineLength"/> characters by the writing methods that wrap (comments, summaries,
/// parenthesized lists, expression bodies, string literals).
/// </summary>
internal sealed class CodeWriter
{
    private const string IndentUnit = "    ";
    private readonly StringBuilder _text = new();

    /// <summary>The current indentation level.</summary>
    public int Indent { get; set; }

    /// <summary>The column where a line written now starts.</summary>
    private int Column => Indent * IndentUnit.Length;

    /// <summary>Whether <paramref name="line"/>, written at the current indentation, stays within the limit.</summary>
    public bool Fits(string line) => Column + line.Length <= SourceLayout.MaxLineLength;

    public void WriteLine(string line)
    {
        if (line.Length > 0)
        {
            for (int i = 0; i < Indent; i++) _text.Append(IndentUnit);
            _text.Append(line);
        }
        _text.Append('\n');
    }

    public void WriteLine() => _text.Append('\n');

    /// <summary>A line at column 0 whatever the indentation (e.g. a preprocessor directive).</summary>
    public void WriteLineNoTabs(string line) => _text.Append(line).Append('\n');

    /// <summary>A "// " comment, continued on further comment lines where it is long.</summary>
    public void WriteComment(string text)
    {
        foreach (string line in SourceLayout.WrapWords(text, SourceLayout.MaxLineLength - Column - "// ".Length))
            WriteLine(line.Length == 0 ? "//" : "// " + line);
    }

    /// <summary>
    /// Code with a trailing comment; where the two do not fit on one line the comment goes on the line above.
    /// </summary>
    public void WriteLine(string code, string trailingComment)
    {
        if (Fits(code + " // " + trailingComment))
        {
            WriteLine(code + " // " + trailingComment);
            return;
        }
        WriteComment(trailingComment);
        WriteLine(code);
    }

    /// <summary>
    /// A one-line "/// &lt;summary&gt;" doc comment, or where it is long the summary tags on lines of their own and
    /// the text wrapped between them. <paramref name="xmlText"/> is XML already (escaped, maybe with tags).
    /// </summary>
    public void WriteSummary(string xmlText) => WriteDocElement("summary", xmlText);

    /// <summary>
    /// "/// &lt;tag&gt;text&lt;/tag&gt;" on one line, or where it is long the tags on lines of their own and the text
    /// wrapped between them. <paramref name="xmlText"/> is XML already (escaped, maybe with tags).
    /// </summary>
    public void WriteDocElement(string tag, string xmlText)
    {
        string oneLine = $"/// <{tag}>{xmlText}</{tag}>";
        if (Fits(oneLine))
        {
            WriteLine(oneLine);
            return;
        }
        WriteLine($"/// <{tag}>");
        foreach (string line in SourceLayout.WrapWords(xmlText, SourceLayout.MaxLineLength - Column - "/// ".Length, xml: true))
            WriteLine("/// " + line);
        WriteLine($"/// </{tag}>");
    }

    /// <summary>
    /// "head(a, b)tail" (a call, a constructor, a signature) on one line where it fits, else as
    /// <see cref="WriteParenthesizedLines"/> writes it.
    /// </summary>
    public void WriteParenthesized(string head, IReadOnlyList<string> items, string tail)
    {
        string oneLine = head + "(" + string.Join(", ", items) + ")" + tail;
        if (Fits(oneLine)) WriteLine(oneLine);
        else WriteParenthesizedLines(head, items, tail);
    }

    /// <summary>"head(" then one item per line, indented one more level, the last closing with ")tail".</summary>
    public void WriteParenthesizedLines(string head, IReadOnlyList<string> items, string tail)
    {
        WriteLine(head + "(");
        Indent++;
        for (int i = 0; i < items.Count; i++) WriteLine(items[i] + (i < items.Count - 1 ? "," : ")" + tail));
        if (items.Count == 0) WriteLine(")" + tail);
        Indent--;
    }

    /// <summary>
    /// An expression-bodied member whose body is a call: on one line where it fits, else the body on the next line,
    /// indented, and wrapped like <see cref="WriteParenthesized"/>.
    /// </summary>
    public void WriteExpressionBody(string declaration, string callHead, IReadOnlyList<string> arguments)
    {
        string oneLine = declaration + " => " + callHead + "(" + string.Join(", ", arguments) + ");";
        if (Fits(oneLine))
        {
            WriteLine(oneLine);
            return;
        }
        WriteLine(declaration + " =>");
        Indent++;
        WriteParenthesized(callHead, arguments, ";");
        Indent--;
    }

    /// <summary>"target = value;" on one line where it fits, else the value on the next line, indented.</summary>
    public void WriteAssignment(string target, string value)
    {
        if (Fits(target + " = " + value + ";"))
        {
            WriteLine(target + " = " + value + ";");
            return;
        }
        WriteLine(target + " =");
        Indent++;
        WriteLine(value + ";");
        Indent--;
    }

    /// <summary>
    /// A C# string literal that follows <paramref name="prefix"/> on a line written at the current indentation;
    /// split into literals joined by + on further lines, indented one more level, where it would not fit.
    /// </summary>
    public string Literal(string text, string prefix) =>
        SourceLayout.WrappedLiteral(text, Column + prefix.Length, Column + IndentUnit.Length);

    public override string ToString() => _text.ToString();
}
