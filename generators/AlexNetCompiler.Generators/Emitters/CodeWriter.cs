using System.Text;

namespace AlexNetCompiler.Generators.Emitters;

/// <summary>
/// The one writer of generated C#: four spaces per level, "\n" line endings on every platform (a generated file is
/// the same bytes wherever it is built), and blank lines without trailing whitespace.
/// </summary>
internal sealed class CodeWriter
{
    private const string IndentUnit = "    ";
    private readonly StringBuilder _text = new();

    /// <summary>The current indentation level.</summary>
    public int Indent { get; set; }

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

    public override string ToString() => _text.ToString();
}
