import sys

from sparsecore.verif.formal.run import main

sys.exit(main())
