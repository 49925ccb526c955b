using System.Text.Json;
using System.Text.Json.Nodes;

namespace GpuCheck;

/// <summary>
/// Every figure the check measures, as one JSON document (the "check" part of the packed run's results.json).
/// Saved again after every part, atomically, so a run stopped by its time limit keeps all that it measured; a part
/// that throws is recorded under "errors" and the next part still runs; a part left out is listed under "skipped".
/// Built from JsonObject with primitive values only, which needs no reflection (NativeAOT).
/// </summary>
internal sealed class CheckResults(string? path)
{
    private static readonly JsonSerializerOptions Indented = new() { WriteIndented = true };

    public JsonObject Root { get; } = new()
    {
        ["errors"] = new JsonArray(),
        ["skipped"] = new JsonArray(),
    };

    /// <summary>The object at a path of keys under the root, created on the way.</summary>
    public JsonObject At(params string[] keys)
    {
        JsonObject node = Root;
        foreach (string key in keys)
        {
            if (node[key] is not JsonObject child)
            {
                child = new JsonObject();
                node[key] = child;
            }
            node = child;
        }
        return node;
    }

    public void Error(string part, Exception e)
    {
        string message = e.Message.ReplaceLineEndings(" ");
        if (message.Length > 2000) message = message[..2000] + "...";
        ((JsonArray)Root["errors"]!).Add((JsonNode)new JsonObject { ["part"] = part, ["type"] = e.GetType().Name, ["message"] = message });
        Console.WriteLine($"ERROR in {part}: {e.GetType().Name}: {message}");
        Save();
    }

    public void Skip(string part, string reason)
    {
        ((JsonArray)Root["skipped"]!).Add((JsonNode)new JsonObject { ["part"] = part, ["reason"] = reason });
        Console.WriteLine($"SKIPPED {part}: {reason}");
        Save();
    }

    public bool HasErrors => ((JsonArray)Root["errors"]!).Count > 0;

    /// <summary>Writes the document to a temporary file and renames it over the target.</summary>
    public void Save()
    {
        if (path is null) return;
        string full = Path.GetFullPath(path);
        Directory.CreateDirectory(Path.GetDirectoryName(full)!);
        string temp = $"{full}.{Environment.ProcessId}.tmp";
        File.WriteAllText(temp, Root.ToJsonString(Indented));
        File.Move(temp, full, overwrite: true);
    }

    /// <summary>A JSON number for a double; NaN and infinities (not JSON) become null.</summary>
    public static JsonNode? Number(double value) => double.IsFinite(value) ? JsonValue.Create(value) : null;
}
