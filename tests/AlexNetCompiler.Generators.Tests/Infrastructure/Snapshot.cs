namespace AlexNetCompiler.Generators.Tests.Infrastructure;

/// <summary>
/// Received/verified snapshots: the expected text lives in Snapshots/{name}.verified.cs. A difference (or a missing
/// verified file) writes {name}.received.cs beside it and fails; nothing is ever accepted automatically. After
/// reviewing the received files, a person runs eng/accept-snapshots.sh to copy them over the verified ones.
/// </summary>
internal static class Snapshot
{
    public static readonly string Directory = Path.Combine(Repository.Root, "tests", "AlexNetCompiler.Generators.Tests", "Snapshots");

    /// <summary>Compares every produced file with its verified snapshot; returns a description of each mismatch.</summary>
    public static IReadOnlyList<string> Compare(IReadOnlyDictionary<string, string> produced, string stalePrefix)
    {
        var problems = new List<string>();
        foreach ((string name, string text) in produced.OrderBy(p => p.Key, StringComparer.Ordinal))
        {
            string verified = Path.Combine(Directory, name + ".verified.cs");
            string received = Path.Combine(Directory, name + ".received.cs");
            string actual = Normalize(text);
            if (File.Exists(verified) && Normalize(File.ReadAllText(verified)) == actual)
            {
                if (File.Exists(received)) File.Delete(received);
                continue;
            }
            File.WriteAllText(received, actual);
            problems.Add(File.Exists(verified)
                ? $"{name}: differs from the verified snapshot ({FirstDifference(Normalize(File.ReadAllText(verified)), actual)}); see {received}"
                : $"{name}: no verified snapshot yet; see {received}");
        }
        // A verified snapshot of a file that is no longer generated is stale.
        foreach (string verified in System.IO.Directory.GetFiles(Directory, stalePrefix + "*.verified.cs"))
        {
            string name = Path.GetFileName(verified)[..^".verified.cs".Length];
            if (!produced.ContainsKey(name)) problems.Add($"{name}: verified snapshot exists but the file is no longer generated");
        }
        return problems;
    }

    private static string Normalize(string text) => text.Replace("\r\n", "\n").TrimStart('\uFEFF');

    private static string FirstDifference(string expected, string actual)
    {
        string[] e = expected.Split('\n'), a = actual.Split('\n');
        for (int i = 0; i < Math.Min(e.Length, a.Length); i++)
        {
            if (e[i] != a[i]) return $"line {i + 1}: expected \"{e[i].Trim()}\", got \"{a[i].Trim()}\"";
        }
        return $"expected {e.Length} lines, got {a.Length}";
    }
}
