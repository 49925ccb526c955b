using System.Diagnostics;
using System.Globalization;
using System.IO.Compression;
using System.Reflection;
using System.Text;
using System.Xml.Linq;
using Xunit.Abstractions;

namespace AlexNetCompiler.Tests.Packaging;

/// <summary>
/// The NuGet package as a user gets it: packs src/AlexNetCompiler into a folder feed, then restores, builds and runs a
/// fresh console project outside the repository that references the package by exact version. So a packaging slip
/// (the generator missing from analyzers/, a dependency left out, a broken nuspec) fails here rather than for users.
/// </summary>
/// <remarks>
/// One pack and one restore/build/run: about 25 seconds on two cores. It needs the package sources the machine's NuGet
/// is configured with (for the package's dependencies) unless they are already in its global packages folder.
/// </remarks>
public sealed class PackagingTests(ITestOutputHelper log) : IDisposable
{
    private const string PackageId = "AlexNetCompiler";

    /// <summary>Only a guard against hangs: a restore, build or pack here takes well under a minute.</summary>
    private static readonly TimeSpan HangGuard = TimeSpan.FromMinutes(15);

    private static readonly string RepoRoot = Metadata("RepoRoot");

    private readonly string _root = Path.Combine(Path.GetTempPath(), "anc-package-" + Guid.NewGuid().ToString("N")[..12]);

    // Input 1x6x6 -> conv 2x4x4 -> pool 2x2x2 (8 features) -> 3 logits.
    private const string ConsumerNetwork = """
        /// <summary>The consumer's own doc comment on its part of the network class.</summary>
        [Network(Channels = 1, Height = 6, Width = 6)]
        [Conv2d(2, Kernel = 3), Relu, MaxPool(2)]
        [Dense(3)]
        public partial class PackageCheckNet { }
        """;

    // Weights chosen so that the test can work out the loss and the update by hand: conv weights 0.1, dense row k
    // all 0.1 * k, biases 0, every input pixel 1, label 0; plain SGD (no weight decay), learning rate 0.1.
    private const string ConsumerProgram = """
        using System.Globalization;
        using AlexNetCompiler;
        using AlexNetCompiler.Training;

        var net = new PackageCheckNet(maxBatch: 1);
        net.Parameters.AsSpan().Clear();
        net.Conv1Weight.Fill(0.1f);
        const int features = PackageCheckNet.Dense1WeightLength / PackageCheckNet.ClassCount;
        for (int k = 0; k < PackageCheckNet.ClassCount; k++) net.Dense1Weight.Slice(k * features, features).Fill(0.1f * k);
        float[] input = Enumerable.Repeat(1f, PackageCheckNet.InputLength).ToArray();
        var sgd = new Sgd(net.Parameters.Length, new SgdOptions(LearningRate: 0.1f, Momentum: 0.9f, WeightDecay: 0f));
        float loss = net.TrainStep(input, [0], batch: 1, sgd, dropoutSeed: null);

        CultureInfo.CurrentCulture = CultureInfo.InvariantCulture;
        Console.WriteLine($"ParameterCount={PackageCheckNet.ParameterCount}");
        Console.WriteLine($"ClassCount={PackageCheckNet.ClassCount}");
        Console.WriteLine($"Conv1Output={PackageCheckNet.Conv1OutputChannels}x{PackageCheckNet.Conv1OutputHeight}x{PackageCheckNet.Conv1OutputWidth}");
        Console.WriteLine($"Dense1OutputLength={PackageCheckNet.Dense1OutputLength}");
        Console.WriteLine($"Loss={loss:R}");
        Console.WriteLine($"Dense1BiasAfterStep={string.Join(';', net.Dense1Bias.ToArray().Select(b => b.ToString("R")))}");
        """;

    [Fact]
    public void The_package_restores_builds_and_trains_in_a_fresh_project_outside_the_repository()
    {
        Assert.False(IsUnder(_root, RepoRoot), $"{_root} must be outside the repository ({RepoRoot}).");
        string feed = Path.Combine(_root, "feed");
        string consumer = Path.Combine(_root, "consumer");
        Directory.CreateDirectory(feed);
        Directory.CreateDirectory(consumer);
        var time = Stopwatch.StartNew();

        // Packs what the test project's build has just built (both projects are its references), without
        // rebuilding: other test projects may be building them at this moment.
        string project = Path.Combine(RepoRoot, "src", "AlexNetCompiler", "AlexNetCompiler.csproj");
        RunDotnet(["pack", project, "-c", Metadata("Configuration"), "--no-build", "--disable-build-servers", "-o", feed], RepoRoot);
        string package = SingleFile(feed, "*.nupkg");
        string version = Path.GetFileNameWithoutExtension(package)[(PackageId.Length + 1)..];
        Assert.True(File.Exists(Path.Combine(feed, $"{PackageId}.{version}.snupkg")),
            $"No symbol package beside {package}: {string.Join(", ", Directory.GetFiles(feed).Select(Path.GetFileName))}");
        AssertPackageContents(package, version);

        WriteConsumer(consumer, feed, version);
        // A packages folder of the test's own: the machine's may hold an older build of this very version.
        var ownPackages = new Dictionary<string, string> { ["NUGET_PACKAGES"] = Path.Combine(_root, "packages") };
        RunDotnet(["build", consumer, "-c", "Release", "--disable-build-servers"], consumer, ownPackages);
        // Restored from the feed above, not from a copy of the package that some earlier restore cached.
        Assert.True(File.Exists(Path.Combine(_root, "packages", PackageId.ToLowerInvariant(), version, $"{PackageId.ToLowerInvariant()}.{version}.nupkg")),
            "The consumer did not restore the package from the test's feed into its own packages folder.");
        AssertDocumentationHasLayerTable(Path.Combine(consumer, "bin", "Release", "net10.0", "Consumer.xml"));

        string output = RunDotnet([Path.Combine(consumer, "bin", "Release", "net10.0", "Consumer.dll")], consumer);
        AssertProgramOutput(output);
        // Not asserted (the test must not depend on the machine's speed); reported for the record.
        log.WriteLine($"Packaging test: pack, restore, build and run took {time.Elapsed.TotalSeconds:F0} s.");
    }

    private static void AssertPackageContents(string package, string version)
    {
        using ZipArchive zip = ZipFile.OpenRead(package);
        var entries = zip.Entries.Select(e => e.FullName).ToHashSet(StringComparer.Ordinal);
        string listing = string.Join("\n", entries.Order(StringComparer.Ordinal));
        foreach (string expected in new[]
        {
            "README.md", "analyzers/dotnet/cs/AlexNetCompiler.Generators.dll", "analyzers/dotnet/cs/AlexNetCompiler.CodeFixes.dll",
            "lib/net10.0/AlexNetCompiler.dll",
        })
            Assert.True(entries.Contains(expected), $"The package lacks {expected}. It holds:\n{listing}");

        using Stream nuspecStream = zip.GetEntry($"{PackageId}.nuspec")!.Open();
        XElement metadata = XDocument.Load(nuspecStream).Root!.Elements().Single(e => e.Name.LocalName == "metadata");
        string? Field(string name) => metadata.Elements().FirstOrDefault(e => e.Name.LocalName == name)?.Value;
        Assert.Equal(PackageId, Field("id"));
        Assert.Equal(version, Field("version"));
        Assert.Equal("README.md", Field("readme"));
        Assert.Equal("MIT", Field("license"));
        Assert.False(string.IsNullOrWhiteSpace(Field("description")), "The package has no description.");
        Assert.False(string.IsNullOrWhiteSpace(Field("tags")), "The package has no tags.");
        // The address in Directory.Build.props, which the generator's diagnostic links also use (RepositoryUrlTests).
        XElement? repository = metadata.Elements().FirstOrDefault(e => e.Name.LocalName == "repository");
        Assert.Equal(Metadata("RepositoryUrl"), repository?.Attribute("url")?.Value);
    }

    private void WriteConsumer(string consumer, string feed, string version)
    {
        // Empty Directory.Build.* files stop MSBuild's search upwards, so nothing around the temp folder leaks in.
        foreach (string name in new[] { "Directory.Build.props", "Directory.Build.targets", "Directory.Packages.props" })
            File.WriteAllText(Path.Combine(_root, name), "<Project />\n");
        // The feed is added to the sources the machine's NuGet already has (user and machine config files still
        // apply: no <clear/>), which bring the package's dependencies. The machine's global packages folder serves as
        // a read-only fallback, so dependencies cached there need no download; it is left out when it holds this
        // version of the package itself, which must come from the feed.
        string machinePackages = MachineGlobalPackagesFolder();
        bool fallback = Directory.Exists(machinePackages) &&
            !Directory.Exists(Path.Combine(machinePackages, PackageId.ToLowerInvariant(), version));
        File.WriteAllText(Path.Combine(_root, "nuget.config"), $"""
            <?xml version="1.0" encoding="utf-8"?>
            <configuration>
              <packageSources>
                <add key="alexnetcompiler-under-test" value="{Xml(feed)}" />
              </packageSources>
              {(fallback ? $"<fallbackPackageFolders><add key=\"machine\" value=\"{Xml(machinePackages)}\" /></fallbackPackageFolders>" : "")}
            </configuration>
            """);
        File.WriteAllText(Path.Combine(consumer, "Consumer.csproj"), $"""
            <Project Sdk="Microsoft.NET.Sdk">
              <PropertyGroup>
                <OutputType>Exe</OutputType>
                <TargetFramework>net10.0</TargetFramework>
                <ImplicitUsings>enable</ImplicitUsings>
                <Nullable>enable</Nullable>
                <!-- As strict as a user may be: the generated code must add no warning. -->
                <GenerateDocumentationFile>true</GenerateDocumentationFile>
                <TreatWarningsAsErrors>true</TreatWarningsAsErrors>
                <NoWarn>$(NoWarn);CS1591</NoWarn>
              </PropertyGroup>
              <ItemGroup>
                <PackageReference Include="{PackageId}" Version="[{version}]" />
              </ItemGroup>
            </Project>
            """);
        File.WriteAllText(Path.Combine(consumer, "Network.cs"), "using AlexNetCompiler;\n\n" + ConsumerNetwork + "\n");
        File.WriteAllText(Path.Combine(consumer, "Program.cs"), ConsumerProgram + "\n");
    }

    /// <summary>The generated class's doc comment reaches the consumer's documentation file, beside the consumer's own.</summary>
    private static void AssertDocumentationHasLayerTable(string documentationFile)
    {
        Assert.True(File.Exists(documentationFile), $"No documentation file {documentationFile}.");
        XElement member = XDocument.Load(documentationFile).Descendants("member")
            .Single(m => (string?)m.Attribute("name") == "T:PackageCheckNet");
        Assert.Contains("The consumer's own doc comment", member.Value, StringComparison.Ordinal);
        XElement table = member.Descendants("list").Single(l => (string?)l.Attribute("type") == "table");
        Assert.Contains(table.Elements("item"), item => item.Element("term")?.Value == "features.0");
    }

    private static void AssertProgramOutput(string output)
    {
        var values = output.Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries)
            .Select(line => line.Split('=', 2)).Where(parts => parts.Length == 2)
            .ToDictionary(parts => parts[0], parts => parts[1], StringComparer.Ordinal);
        string Value(string key) => values.TryGetValue(key, out string? value) ? value : throw new Xunit.Sdk.XunitException($"The program printed no {key}. Output:\n{output}");

        // The spec's arithmetic: conv 2 x (1*3*3) weights + 2 biases; valid 3x3 conv of 6x6 -> 4x4, 2x2 pool -> 2x2,
        // so the dense layer sees 2*2*2 = 8 features: 3 x 8 weights + 3 biases.
        const int convParameters = 2 * 1 * 3 * 3 + 2, features = 2 * 2 * 2, denseParameters = 3 * features + 3;
        Assert.Equal((convParameters + denseParameters).ToString(CultureInfo.InvariantCulture), Value("ParameterCount"));
        Assert.Equal("3", Value("ClassCount"));
        Assert.Equal("2x4x4", Value("Conv1Output"));
        Assert.Equal("3", Value("Dense1OutputLength"));

        // Each conv output sums nine 1 * 0.1 = 0.9 (ReLU and max-pool keep it), so logit k = 8 * 0.9 * 0.1k = 0.72k;
        // cross-entropy against class 0 is log(sum exp(logits)) - logit 0.
        double[] logits = [0, 0.72, 1.44];
        double sum = logits.Sum(Math.Exp);
        double expectedLoss = Math.Log(sum) - logits[0];
        double loss = double.Parse(Value("Loss"), CultureInfo.InvariantCulture);
        Assert.True(Math.Abs(loss - expectedLoss) < 1e-5, $"Loss {loss}, expected {expectedLoss}. Output:\n{output}");

        // The first SGD step moves each bias by -0.1 * (softmax - one-hot), momentum not yet in play.
        double[] bias = Value("Dense1BiasAfterStep").Split(';').Select(b => double.Parse(b, CultureInfo.InvariantCulture)).ToArray();
        Assert.Equal(3, bias.Length);
        for (int k = 0; k < 3; k++)
        {
            double expected = -0.1 * (Math.Exp(logits[k]) / sum - (k == 0 ? 1 : 0));
            Assert.True(Math.Abs(bias[k] - expected) < 1e-5, $"Bias {k} after the step: {bias[k]}, expected {expected}. Output:\n{output}");
        }
    }

    /// <summary>Runs the dotnet host that runs these tests; returns its output, or fails with it on a non-zero exit.</summary>
    private static string RunDotnet(IReadOnlyList<string> arguments, string workingDirectory, IReadOnlyDictionary<string, string>? environment = null)
    {
        var start = new ProcessStartInfo(DotnetHost)
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            RedirectStandardInput = true,
            UseShellExecute = false,
            WorkingDirectory = workingDirectory,
        };
        foreach (string argument in arguments) start.ArgumentList.Add(argument);
        // The test host's MSBuild and VSTest variables would point the child's build at this process's SDK state.
        foreach (string name in start.Environment.Keys.Where(IsInheritedBuildVariable).ToList()) start.Environment.Remove(name);
        start.Environment["DOTNET_CLI_TELEMETRY_OPTOUT"] = "1";
        start.Environment["DOTNET_NOLOGO"] = "1";
        start.Environment["DOTNET_SKIP_FIRST_TIME_EXPERIENCE"] = "1";
        foreach (var (name, value) in environment ?? new Dictionary<string, string>()) start.Environment[name] = value;

        var output = new StringBuilder();
        using var process = new Process { StartInfo = start };
        process.OutputDataReceived += (_, e) => { if (e.Data is not null) lock (output) output.AppendLine(e.Data); };
        process.ErrorDataReceived += (_, e) => { if (e.Data is not null) lock (output) output.AppendLine(e.Data); };
        process.Start();
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
        process.StandardInput.Close();
        string command = $"dotnet {string.Join(' ', arguments)}";
        if (!process.WaitForExit(HangGuard))
        {
            process.Kill(entireProcessTree: true);
            process.WaitForExit();
            throw new TimeoutException($"`{command}` was still running after {HangGuard.TotalMinutes:F0} min; killed. Output:\n{Text(output)}");
        }
        process.WaitForExit(); // the last of the redirected output
        Assert.True(process.ExitCode == 0, $"`{command}` (in {workingDirectory}) exited with {process.ExitCode}. Output:\n{Text(output)}");
        return Text(output);
    }

    private static string Text(StringBuilder output) { lock (output) return output.ToString(); }

    private static bool IsInheritedBuildVariable(string name) =>
        name.StartsWith("MSBuild", StringComparison.OrdinalIgnoreCase) || name.StartsWith("VSTEST", StringComparison.OrdinalIgnoreCase) ||
        name is "DOTNET_HOST_PATH";

    /// <summary>The dotnet host running these tests (…/dotnet/shared/Microsoft.NETCore.App/{version}/ three levels up).</summary>
    private static string DotnetHost
    {
        get
        {
            string? fromSdk = Environment.GetEnvironmentVariable("DOTNET_HOST_PATH");
            if (!string.IsNullOrEmpty(fromSdk) && File.Exists(fromSdk)) return fromSdk;
            string runtime = Path.GetDirectoryName(typeof(object).Assembly.Location)!;
            string host = Path.GetFullPath(Path.Combine(runtime, "..", "..", "..", "dotnet"));
            return File.Exists(host) ? host : "dotnet";
        }
    }

    private static string MachineGlobalPackagesFolder()
    {
        string? configured = Environment.GetEnvironmentVariable("NUGET_PACKAGES");
        return !string.IsNullOrEmpty(configured)
            ? configured
            : Path.Combine(Environment.GetFolderPath(Environment.SpecialFolder.UserProfile), ".nuget", "packages");
    }

    private static string SingleFile(string folder, string pattern)
    {
        string[] files = Directory.GetFiles(folder, pattern);
        Assert.True(files.Length == 1, $"Expected one {pattern} in {folder}, found: {string.Join(", ", files.Select(Path.GetFileName))}");
        return files[0];
    }

    private static bool IsUnder(string path, string folder) =>
        Path.GetFullPath(path).StartsWith(Path.TrimEndingDirectorySeparator(Path.GetFullPath(folder)) + Path.DirectorySeparatorChar, StringComparison.Ordinal);

    private static string Xml(string text) => System.Security.SecurityElement.Escape(text);

    private static string Metadata(string key) =>
        typeof(PackagingTests).Assembly.GetCustomAttributes<AssemblyMetadataAttribute>().FirstOrDefault(a => a.Key == key)?.Value
        ?? throw new InvalidOperationException($"The test assembly has no '{key}' metadata (see AlexNetCompiler.Tests.csproj).");

    public void Dispose()
    {
        try { Directory.Delete(_root, recursive: true); } catch (IOException) { } catch (UnauthorizedAccessException) { }
    }
}
