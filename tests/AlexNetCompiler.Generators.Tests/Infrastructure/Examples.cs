using Microsoft.CodeAnalysis;

namespace AlexNetCompiler.Generators.Tests.Infrastructure;

/// <summary>The example projects' real spec files, read from the repository so that tests track them.</summary>
internal sealed record Example(string Name, string SpecPath, string? ProgramPath, string TypeName)
{
    public static readonly Example Canonical = new("CanonicalAlexNet", "examples/CanonicalAlexNet/AlexNet2012.cs", "examples/CanonicalAlexNet/Program.cs", "CanonicalAlexNet.AlexNet2012");
    public static readonly Example Torchvision = new("TorchvisionAlexNet", "examples/TorchvisionAlexNet/TorchvisionAlexNet.cs", "examples/TorchvisionAlexNet/Program.cs", "TorchvisionAlexNet.TorchvisionAlexNet");
    public static readonly Example Fashion = new("FashionMnist", "examples/FashionMnist/FashionNet.cs", null, "FashionMnist.FashionNet");
    public static readonly Example Cifar = new("CifarNet", "examples/FashionMnist/CifarNet.cs", null, "FashionMnist.CifarNet");

    public static readonly Example[] All = { Canonical, Torchvision, Fashion, Cifar };

    public static TheoryData<string> Names => new(All.Select(e => e.Name));

    public static Example Named(string name) => All.Single(e => e.Name == name);

    /// <summary>
    /// The spec and a program that uses the generated members: the example's own Program.cs where it is a
    /// single file, else (the Fashion-MNIST app spans many files and packages) one line that prints the summary.
    /// </summary>
    public Compilation CreateCompilation()
    {
        (string Path, string Text) program = ProgramPath is null
            ? ("Program.cs", $"System.Console.WriteLine({TypeName}.Model.ToSummary());")
            : (ProgramPath, Repository.ReadText(ProgramPath));
        return GeneratorHarness.CreateCompilation(
            new[] { (SpecPath, Repository.ReadText(SpecPath)), program },
            OutputKind.ConsoleApplication);
    }

    public GeneratorOutcome Run() => GeneratorHarness.Run(CreateCompilation());
}
