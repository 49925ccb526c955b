using System.Text.RegularExpressions;
using System.Xml.Linq;
using AlexNetCompiler.Generators.Diagnostics;
using AlexNetCompiler.Generators.Tests.Infrastructure;

namespace AlexNetCompiler.Generators.Tests;

/// <summary>
/// The project's address is written twice: the RepositoryUrl MSBuild property (Directory.Build.props; the package's
/// repository and project links) and the generator's constant (the help links of its diagnostics). They must agree.
/// </summary>
public sealed partial class RepositoryUrlTests
{
    [Fact]
    public void The_generator_links_to_the_repository_the_package_names()
    {
        XElement property = XDocument.Parse(Repository.ReadText("Directory.Build.props")).Descendants("RepositoryUrl").Single();
        Assert.Equal(DiagnosticDescriptors.RepositoryUrl, property.Value.Trim());
    }

    // nuget.org shows the package README but cannot follow relative links: each must be absolute, into this repository.
    [Fact]
    public void The_package_readme_links_only_into_the_repository()
    {
        string readme = Repository.ReadText("src/AlexNetCompiler/README.md");
        string[] links = MarkdownLink().Matches(readme).Select(m => m.Groups[1].Value).ToArray();
        Assert.NotEmpty(links);
        Assert.All(links, link => Assert.StartsWith(DiagnosticDescriptors.RepositoryUrl, link, StringComparison.Ordinal));
    }

    [GeneratedRegex(@"\]\(([^)\s]+)\)")]
    private static partial Regex MarkdownLink();
}
