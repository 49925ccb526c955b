using AlexNetCompiler.Cuda;

namespace AlexNetCompiler.Tests.Cuda;

/// <summary>GEMM tiles: parsing, and the grid each GEMM launch of the example plans gets for every tile.</summary>
public sealed class GemmTileTests
{
    [Theory]
    [InlineData("64x64", 64, 64)]
    [InlineData("128x64", 128, 64)]
    [InlineData(" 64X128 ", 64, 128)]
    [InlineData("128x128", 128, 128)]
    public void SupportedTilesParse(string text, int m, int n) => Assert.Equal(new CudaGemmTile(m, n), CudaGemmTile.Parse(text));

    [Theory]
    [InlineData("32x64")]
    [InlineData("64")]
    [InlineData("64x64x16")]
    [InlineData("big")]
    public void UnsupportedTilesAreRefusedNamingTheSupportedOnes(string text)
    {
        var e = Assert.Throws<FormatException>(() => CudaGemmTile.Parse(text));
        Assert.Contains($"'{text}'", e.Message, StringComparison.Ordinal);
        Assert.Contains("64x64, 128x64, 64x128, 128x128", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void ListsParseAndAllMeansEveryTile()
    {
        Assert.Equal(CudaGemmTile.All, CudaGemmTile.ParseList("all"));
        Assert.Equal([new CudaGemmTile(128, 128), new CudaGemmTile(64, 64)], CudaGemmTile.ParseList("128x128, 64x64,128x128"));
        Assert.Throws<FormatException>(() => CudaGemmTile.ParseList(" , "));
    }

    public static TheoryData<string> Plans() => new(ExamplePlans.Keys);

    private static readonly Dictionary<string, CudaLaunchPlan> ExamplePlans = new()
    {
        ["AlexNet2012"] = CanonicalAlexNet.AlexNet2012.CudaPlan,
        ["TorchvisionAlexNet"] = TorchvisionAlexNet.TorchvisionAlexNet.CudaPlan,
        ["FashionNet"] = FashionMnist.FashionNet.CudaPlan,
        ["UnusualNet"] = Networks.UnusualNet.CudaPlan,
    };

    // For the default tile the grid computed from the GEMM shape is the plan's own grid; for every tile the
    // blocks cover C exactly: enough tiles for M and N, and no row or column of tiles entirely outside C.
    [Theory]
    [MemberData(nameof(Plans))]
    public void GemmGridsCoverTheGemmForEveryTile(string network)
    {
        CudaLaunchPlan plan = ExamplePlans[network];
        var gemms = plan.Forward.Concat(plan.Backward).OfType<CudaLaunch>().Where(l => l.Gemm is not null).ToList();
        Assert.NotEmpty(gemms);
        foreach (int batch in new[] { 1, 7, 128 })
        {
            foreach (CudaLaunch launch in gemms)
            {
                Assert.Equal((launch.GridX.Evaluate(batch), launch.GridY.Evaluate(batch), launch.GridZ.Evaluate(batch)), launch.Grid(batch, CudaGemmTile.Default));
                long m = launch.Gemm!.M.Evaluate(batch), n = launch.Gemm.N.Evaluate(batch);
                foreach (CudaGemmTile tile in CudaGemmTile.All)
                {
                    var (x, y, z) = launch.Grid(batch, tile);
                    Assert.Equal(launch.GridZ.Evaluate(batch), z);
                    long tilesM = (m + tile.M - 1) / tile.M, tilesN = (n + tile.N - 1) / tile.N;
                    if (launch.Gemm.SplitReduction)
                    {
                        Assert.Equal(launch.GridX.Evaluate(batch), x);
                        Assert.Equal(tilesM * tilesN, y);
                    }
                    else
                    {
                        Assert.True(x * (long)tile.N >= n && (x - 1) * (long)tile.N < n, $"{network} {launch.Kernel} {tile} batch {batch}: {x} column tiles for N = {n}");
                        Assert.True(y * (long)tile.M >= m && (y - 1) * (long)tile.M < m, $"{network} {launch.Kernel} {tile} batch {batch}: {y} row tiles for M = {m}");
                    }
                }
            }
        }
    }
}
