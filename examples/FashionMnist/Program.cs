System.Console.WriteLine(FashionMnist.FashionNet.Model.ToSummary());
