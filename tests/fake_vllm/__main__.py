from tests.fake_vllm.cli import main

raise SystemExit(main())
